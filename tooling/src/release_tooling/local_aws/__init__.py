"""Embedded AWS for the local pipeline: moto (pinned) plus the fidelity moto lacks.

- lambda_runtime / lambda_patch: Invoke runs the deployed zip of the invoked version or alias in a
  subprocess with the function's handler, environment and timeout;
- codedeploy / codedeploy_patch: Lambda blue/green deployments shift traffic, run hooks, watch
  alarms and roll back, on a compressed clock;
- asl_validation / stepfunctions_patch: ValidateStateMachineDefinition and ListStateMachineVersions;
- s3_patch / codepipeline_patch: bucket policy conditions, headers and timestamps Terraform needs;
- faults: failure injection armed by the harness (never inside Lambda code);
- iam_enforcement / iam_policy / iam_actions: authentication and IAM evaluation of every request;
- accounts: several AWS accounts (one administrator each) and cross-account requests as AWS
  evaluates them (resource policies, role trust);
- server / process: the endpoint process and the client side that starts, probes and stops it.
"""
