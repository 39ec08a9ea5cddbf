# The release's time budget, derived in one place from the two deployment strategies (staging's
# and production's) and the approval window. Pure arithmetic (no resources), so tests evaluate it with `terraform apply` on its own.
locals {
  # Minutes from the first traffic shift to the last for each predefined config, from
  # "Deployment configurations on an AWS Lambda compute platform" (CodeDeploy User Guide):
  # Canary10PercentNMinutes shifts 10 % then the remaining 90 % N minutes later; Linear10PercentEveryN
  # shifts 10 % every N minutes until all traffic is shifted. Linear is counted as 10 full
  # intervals (one more than the 9 between its 10 increments) so the budget never runs short.
  shift_minutes = {
    AllAtOnce                     = 0
    Canary10Percent5Minutes       = 5
    Canary10Percent10Minutes      = 10
    Canary10Percent15Minutes      = 15
    Canary10Percent30Minutes      = 30
    Linear10PercentEvery1Minute   = 10
    Linear10PercentEvery2Minutes  = 20
    Linear10PercentEvery3Minutes  = 30
    Linear10PercentEvery10Minutes = 100
  }

  # Each alias shifts with its own strategy: staging (smoke checks only, no users) usually all at
  # once, production with the canary or linear shift.
  stage_strategies = {
    staging    = var.staging_deployment_strategy
    production = var.deployment_strategy
  }
  stage_shift_minutes = { for stage, strategy in local.stage_strategies : stage => local.shift_minutes[strategy] }

  # Beyond the shift itself a deployment needs time to start, to update the alias and for the
  # error alarm (1-minute period) to be evaluated: 10 minutes covers that with room to spare.
  deployment_margin_seconds  = 600
  deployment_timeout_seconds = { for stage, minutes in local.stage_shift_minutes : stage => minutes * 60 + local.deployment_margin_seconds }
  # Polls one stage may need; Step Functions Standard keeps at most 25,000 history events per
  # execution ("Step Functions service quotas"), about 10 per poll (Task + Choice + Wait).
  max_polls = { for stage, timeout in local.deployment_timeout_seconds : stage => ceil(timeout / var.poll_interval_seconds) + 1 }

  # A Task state's worst case under the ASL's Retry (6 retries, 2 s doubling, capped at 60 s):
  # 7 attempts that each run into the Lambda timeout, plus the back-off between them.
  retry_backoff_seconds = 2 + 4 + 8 + 16 + 32 + 60
  task_worst_seconds    = { for name, timeout in var.task_timeouts : name => 7 * timeout + local.retry_backoff_seconds }

  # A poll loop ends at the first status call after the deployment's budget ran out.
  poll_loop_seconds = {
    for stage, timeout in local.deployment_timeout_seconds :
    stage => timeout + var.poll_interval_seconds + local.task_worst_seconds["deployment_status"]
  }

  approval_seconds = var.manual_approval ? var.approval_timeout_seconds : 0

  stage_worst_seconds = {
    validate_artifact  = local.task_worst_seconds["validate_artifact"]
    deploy_staging     = local.task_worst_seconds["deploy"]
    check_staging      = local.poll_loop_seconds["staging"]
    smoke_tests        = local.task_worst_seconds["smoke_tests"]
    approve_production = local.approval_seconds + (var.manual_approval ? local.task_worst_seconds["approval_notifier"] : 0)
    deploy_production  = local.task_worst_seconds["deploy"]
    check_production   = local.poll_loop_seconds["production"]
    rollback           = local.task_worst_seconds["rollback"]
  }
  # Five minutes of slack for Step Functions' own scheduling between states.
  state_machine_timeout_seconds = sum(values(local.stage_worst_seconds)) + 300

  # release-wait must outlast the machine, plus the time CodePipeline takes to pick the source
  # up and start the execution (and a queue ahead of it is reported as waiting, not failure).
  release_wait_seconds = local.state_machine_timeout_seconds + 900
}
