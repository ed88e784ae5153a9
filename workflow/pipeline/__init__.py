"""The state machine's steps (statemachine.asl.json), one module per state, each called by a thin handler in
lambdas/: the request from an ECR event or a manual input (`request`), the Plan and the EventBridge pattern
compiled from the rules (`plan`), the Gate (`gate`), the Precheck (`precheck`) and the deletes it finishes
(`deletes`), the Record (`record`), the Summarize step (`summary`), the replication events it announces
(`announce`), the metrics the handlers emit (`metrics`) and the runbook's error links (`runbook`); a run past the
inline Map's limit in the fan-out bucket (`fanout`), each Region's seed (`seeds`) and a run's estimated cost (`cost`).

May import: core/, registry/, engine/, models/, gates/.
"""
