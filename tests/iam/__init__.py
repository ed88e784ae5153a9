"""The IAM coverage test: every AWS call the components make, checked against the synthesized roles."""
