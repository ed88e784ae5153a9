// Test-only: evaluate IAM requests with @cloud-copilot/iam-simulate (an evaluator independent of moto).
// stdin: a JSON array of simulations (the package's `Simulation` shape); stdout: a JSON array, one entry
// each, in order: {"result": "Allowed" | "ImplicitlyDenied" | "ExplicitlyDenied", "ignored": [context keys
// the package dropped as not applying to the action]} or {"error": "<why the simulation could not run>"}.
import { runSimulation } from '@cloud-copilot/iam-simulate'

const chunks = []
for await (const chunk of process.stdin) chunks.push(chunk)
const simulations = JSON.parse(Buffer.concat(chunks).toString('utf8'))
const results = []
for (const simulation of simulations) {
  const outcome = await runSimulation(simulation, { simulationMode: 'Strict' })
  if (outcome.resultType === 'error') {
    results.push({ error: JSON.stringify(outcome.errors) })
  } else if (outcome.resultType === 'single') {
    results.push({ result: outcome.overallResult, ignored: outcome.result.ignoredContextKeys || [] })
  } else {
    results.push({ result: outcome.overallResult, ignored: [] })
  }
}
process.stdout.write(JSON.stringify(results))
