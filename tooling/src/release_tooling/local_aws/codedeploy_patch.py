"""Wire codedeploy.DeploymentRun into moto's CodeDeploy, whose deployments otherwise stay "Created".

Adds the API calls a Lambda blue/green pipeline and the Terraform provider need and moto lacks
(StopDeployment, PutLifecycleEventHookExecutionStatus, Update/DeleteDeploymentGroup,
DeleteApplication, deployment configs) and reports deployments the way AWS does
(status, errorInformation, rollbackInfo, deploymentOverview) and deployment groups the way AWS
does (unset structures left out, so `terraform plan` after an apply is empty).
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any

from moto.awslambda.models import lambda_backends
from moto.cloudwatch.models import cloudwatch_backends
from moto.codedeploy import models as cd_models
from moto.codedeploy import responses as cd_responses
from moto.codedeploy.exceptions import CodeDeployException
from moto.core.responses import ActionResult, EmptyResult

from . import traffic
from .codedeploy import (
    PREDEFINED_CONFIGS,
    DeploymentConfigError,
    DeploymentRun,
    GroupSettings,
    RollbackRun,
    TrafficRouting,
    new_deployment_id,
    shift_minutes,
)
from .faults import FaultRegistry
from .lambda_patch import LambdaInvoker

log = logging.getLogger("local_aws.codedeploy")


def _error(name: str, message: str) -> CodeDeployException:
    exc = CodeDeployException(name, message)
    exc.code = 400
    return exc


class MotoEnvironment:
    """codedeploy.Environment on moto's Lambda and CloudWatch backends."""

    def __init__(
        self,
        account_id: str,
        region: str,
        invoker: LambdaInvoker,
        faults: FaultRegistry,
        service_role_arn: str = "",
        authorize=None,
    ) -> None:
        self.account_id, self.region = account_id, region
        self.invoker, self.faults = invoker, faults
        # CodeDeploy acts with the deployment group's service role ("Step 2: Create a service role
        # for CodeDeploy", CodeDeploy User Guide): every call below is authorized as that role.
        self.service_role_arn = service_role_arn
        self.authorize = authorize

    def _as_service_role(self, action: str, resource: str) -> None:
        if self.authorize is not None:
            self.authorize(self.service_role_arn, action, resource, {}, "CodeDeploy")

    def _function_arn(self, function_name: str, qualifier: str) -> str:
        return (
            f"arn:aws:lambda:{self.region}:{self.account_id}:function:{function_name}:{qualifier}"
        )

    @property
    def _lambda(self):
        return lambda_backends[self.account_id][self.region]

    def alias_version(self, function_name: str, alias: str) -> tuple[str, dict]:
        found = self._lambda.get_alias(alias, function_name)
        return str(found.function_version), dict(found.routing_config or {})

    def version_exists(self, function_name: str, version: str) -> bool:
        try:
            self._lambda.get_function(function_name, version)
        except Exception:  # noqa: BLE001 - moto raises its own not-found types
            return False
        return True

    def set_alias(
        self, function_name: str, alias: str, version: str, weights: dict[str, float]
    ) -> None:
        self._as_service_role("lambda:UpdateAlias", self._function_arn(function_name, alias))
        routing = {"AdditionalVersionWeights": {k: round(v, 4) for k, v in weights.items()}}
        updated = self._lambda.update_alias(alias, function_name, version, None, routing)
        updated.revision_id = str(uuid.uuid4())

    def alarm_states(self, names: list[str]) -> dict[str, str | None]:
        for name in names:
            self._as_service_role(
                "cloudwatch:DescribeAlarms",
                f"arn:aws:cloudwatch:{self.region}:{self.account_id}:alarm:{name}",
            )
        alarms = cloudwatch_backends[self.account_id][self.region].alarms
        return {n: (alarms[n].state_value if n in alarms else None) for n in names}

    def trip_alarms(self, names: list[str], reason: str) -> None:
        cw = cloudwatch_backends[self.account_id][self.region]
        for name in names:
            if name in cw.alarms:
                cw.set_alarm_state(name, reason, "{}", "ALARM")
            else:
                log.warning("fault names alarm %s, which does not exist", name)

    def injected_alarms(self, group_name: str) -> list[str]:
        return self.faults.alarms_for_deployment(group_name)

    def start_traffic(self, spec) -> Callable[[], None] | None:
        """Users' calls to the alias while it shifts (traffic.py), from the new version's checks."""
        if spec.alias not in traffic.TRAFFIC_ALIASES:
            return None
        label = f"{spec.function_name}:{spec.alias}"
        code = self._lambda.get_function(spec.function_name, spec.target_version).code_bytes
        try:
            checks = traffic.load_checks(code)
        except traffic.SmokeChecksError as exc:
            log.warning("no synthetic traffic to %s: %s", label, exc)
            return None
        if checks is None:
            log.info(
                "no synthetic traffic to %s: version %s has no %s in its package",
                label,
                spec.target_version,
                traffic.CHECKS_FILE,
            )
            return None

        router = traffic.ProportionalRouter()

        def send(event: dict) -> tuple[str, str | None, bytes]:
            alias = self._lambda.get_alias(spec.alias, spec.function_name)
            version = router.choose(str(alias.function_version), alias.routing_config)
            fn = self._lambda.get_function(spec.function_name, version)
            result = self.invoker.run(fn, spec.alias, json.dumps(event).encode())
            return result.executed_version, result.function_error, result.payload

        return traffic.CanaryTraffic(label, checks, send).start().stop

    def invoke_hook(self, function_name: str, payload: dict) -> None:
        # CodeDeploy invokes hooks asynchronously; a hook reports back with
        # PutLifecycleEventHookExecutionStatus.
        self._as_service_role(
            "lambda:InvokeFunction",
            f"arn:aws:lambda:{self.region}:{self.account_id}:function:{function_name}",
        )

        def run() -> None:
            try:
                fn, qualifier = self.invoker.resolve(self._lambda, function_name, None)
                result = self.invoker.run(fn, qualifier, json.dumps(payload).encode())
                if result.function_error:
                    log.warning("hook %s failed: %s", function_name, result.payload[:500])
            except Exception:  # noqa: BLE001 - a missing hook function shows up as a hook timeout, as in AWS
                log.exception("hook %s could not be invoked", function_name)

        threading.Thread(target=run, daemon=True).start()


class DeploymentEngine:
    # authorize(role_arn, action, resource, context, session_name) raises PermissionError when the
    # deployment group's service role may not act; None (unit tests of the engine) checks nothing.
    authorize = None

    def __init__(
        self, invoker: LambdaInvoker, faults: FaultRegistry, minute_seconds: float
    ) -> None:
        self.invoker, self.faults, self.minute_seconds = invoker, faults, minute_seconds
        self.runs: dict[str, DeploymentRun] = {}
        self.custom_configs: dict[tuple[str, str, str], TrafficRouting] = {}
        self.lock = threading.Lock()

    def routing_for(self, backend, name: str) -> TrafficRouting:
        if name in PREDEFINED_CONFIGS:
            return PREDEFINED_CONFIGS[name]
        custom = self.custom_configs.get((backend.account_id, backend.region_name, name))
        if custom is None:
            raise _error(
                "InvalidDeploymentConfigNameException",
                f"Deployment config {name!r} is not a Lambda deployment config; use one of "
                f"{sorted(PREDEFINED_CONFIGS)} or create it.",
            )
        return custom

    def active_in(self, backend, app: str, group: str) -> DeploymentRun | None:
        for dep_id, dep in backend.deployments.items():
            run = self.runs.get(dep_id)
            if (
                run
                and run.active
                and dep.application_name == app
                and dep.deployment_group_name == group
            ):
                return run
        return None

    def rollback_record(self, backend, run: DeploymentRun) -> str:
        """Start the rollback deployment of `run`: a real deployment in this engine that holds
        the group for the original's shift time (see codedeploy.RollbackRun)."""
        original = backend.deployments[run.deployment_id]
        revision = _swap_revision(run)
        record = cd_models.DeploymentInfo(
            original.application,
            original.deployment_group,
            revision,
            str(original.deployment_config_name),
            f"Rollback of {run.deployment_id}",
            None,
            None,
            None,
            None,
            None,
            None,
            "codeDeployRollback",
        )
        record.deployment_id = new_deployment_id()
        rollback = RollbackRun(
            record.deployment_id,
            GroupSettings(name=run.group.name),  # alarms do not stop a rollback
            revision,
            run.routing,
            run.env,
            self.minute_seconds,
            lambda _r: "",
            hold_minutes=shift_minutes(run.routing),
            triggered_by=run.deployment_id,
        )
        rollback.record = record
        record.status = rollback.status
        backend.deployments[record.deployment_id] = record
        self.runs[record.deployment_id] = rollback
        rollback.start()
        return record.deployment_id


def _swap_revision(run: DeploymentRun) -> dict:
    # The revision CodeDeploy records for an automatic rollback: same function, versions swapped.
    spec = run.appspec
    props = {
        "Name": spec.function_name,
        "Alias": spec.alias,
        "CurrentVersion": spec.target_version,
        "TargetVersion": spec.current_version,
    }
    content = json.dumps(
        {
            "version": 0.0,
            "Resources": [
                {spec.function_name: {"Type": "AWS::Lambda::Function", "Properties": props}}
            ],
        }
    )
    return {"revisionType": "AppSpecContent", "appSpecContent": {"content": content}}


def _group_settings(group) -> GroupSettings:
    alarm_cfg = group.alarm_configuration or {}
    if not isinstance(alarm_cfg, dict):  # moto's own AlarmConfiguration object
        alarm_cfg = {
            "enabled": alarm_cfg.enabled,
            "alarms": alarm_cfg.alarms,
            "ignorePollAlarmFailure": alarm_cfg.ignore_poll_alarm_failure,
        }
    rollback = group.auto_rollback_configuration or {}
    return GroupSettings(
        name=group.deployment_group_name,
        alarms=[a["name"] for a in alarm_cfg.get("alarms") or []],
        alarms_enabled=bool(alarm_cfg.get("enabled")),
        ignore_poll_alarm_failure=bool(alarm_cfg.get("ignorePollAlarmFailure")),
        rollback_events=tuple(rollback.get("events") or ()) if rollback.get("enabled") else (),
    )


def install(engine: DeploymentEngine) -> None:
    backend_cls = cd_models.CodeDeployBackend
    response_cls = cd_responses.CodeDeployResponse
    original_create = backend_cls.create_deployment
    original_info = cd_responses._deployment_info
    original_group_info = cd_responses._deployment_group_info

    def create_deployment(
        self,
        application_name,
        deployment_group_name,
        revision,
        deployment_config_name=None,
        *args,
        **kwargs,
    ):
        app = self.get_application(application_name)
        if app.compute_platform != "Lambda":
            return original_create(
                self,
                application_name,
                deployment_group_name,
                revision,
                deployment_config_name,
                *args,
                **kwargs,
            )
        if not revision:
            raise _error("RevisionRequiredException", "The revision ID was not specified.")
        group = self.get_deployment_group(application_name, deployment_group_name)
        config_name = deployment_config_name or str(group.deployment_config_name)
        routing = engine.routing_for(self, config_name)
        with engine.lock:
            busy = engine.active_in(self, application_name, deployment_group_name)
            if busy is not None:
                raise _error(
                    "DeploymentLimitExceededException",
                    f"The Deployment Group '{deployment_group_name}' already has an active "
                    f"Deployment '{busy.deployment_id}'",
                )
            moto_id = original_create(
                self,
                application_name,
                deployment_group_name,
                revision,
                config_name,
                *args,
                **kwargs,
            )
            record = self.deployments.pop(moto_id)
            record.deployment_id = new_deployment_id()
            self.deployments[record.deployment_id] = record
            env = MotoEnvironment(
                self.account_id,
                self.region_name,
                engine.invoker,
                engine.faults,
                service_role_arn=group.service_role_arn,
                authorize=engine.authorize,
            )
            run = DeploymentRun(
                record.deployment_id,
                _group_settings(group),
                revision,
                routing,
                env,
                engine.minute_seconds,
                on_rollback=lambda r, backend=self: engine.rollback_record(backend, r),
            )
            run.record = record
            engine.runs[record.deployment_id] = run
        run.start()
        return record.deployment_id

    def deployment_info(deployment) -> dict[str, Any]:
        info = original_info(deployment)
        run = engine.runs.get(deployment.deployment_id)
        if run is None:
            return info
        info.update(
            {
                "status": run.status,
                "errorInformation": run.error_information or None,
                "rollbackInfo": run.rollback_info or None,
                "startTime": run.start_time,
                "completeTime": run.complete_time,
                "deploymentOverview": run.overview(),
                "creator": deployment.creator,
                "deploymentStyle": {
                    "deploymentType": "BLUE_GREEN",
                    "deploymentOption": "WITH_TRAFFIC_CONTROL",
                },
                "instanceTerminationWaitTimeStarted": False,
            }
        )
        return {k: v for k, v in info.items() if v is not None}

    def deployment_group_info(group) -> dict[str, Any]:
        info = original_group_info(group)
        if isinstance(group.alarm_configuration, dict):
            info["alarmConfiguration"] = group.alarm_configuration
        info["deploymentConfigName"] = str(group.deployment_config_name)
        # AWS leaves an unset structure out of the response; moto sends {} (loadBalancerInfo,
        # targetRevision, lastSuccessfulDeployment, ...). The Terraform provider reads {} as a
        # configured block, so a Lambda group would always plan `- load_balancer_info {}`.
        # Empty lists stay: AWS does send ec2TagFilters: [] and the like.
        return {k: v for k, v in info.items() if v != {}}

    # ---- API calls moto lacks ----------------------------------------------------------------
    def stop_deployment(self) -> ActionResult:
        deployment_id = self._get_param("deploymentId")
        self.codedeploy_backend.get_deployment(deployment_id)
        run = engine.runs.get(deployment_id)
        if run is None or not run.active:
            raise _error(
                "DeploymentAlreadyCompletedException",
                f"The deployment {deployment_id} has already completed.",
            )
        try:
            run.stop(bool(self._get_param("autoRollbackEnabled")))
        except RuntimeError as exc:
            raise _error("DeploymentAlreadyCompletedException", str(exc)) from exc
        return ActionResult({"status": "Succeeded", "statusMessage": "Deployment stopped."})

    def put_lifecycle_event_hook_execution_status(self) -> ActionResult:
        deployment_id = self._get_param("deploymentId")
        execution_id = self._get_param("lifecycleEventHookExecutionId")
        status = self._get_param("status")
        self.codedeploy_backend.get_deployment(deployment_id)
        if status not in ("Succeeded", "Failed"):
            raise _error(
                "InvalidLifecycleEventHookExecutionStatusException",
                f"Status {status!r} is not valid; use Succeeded or Failed.",
            )
        run = engine.runs.get(deployment_id)
        try:
            if run is None:
                raise KeyError(execution_id)
            run.report_hook(execution_id, status)
        except KeyError as exc:
            raise _error(
                "InvalidLifecycleEventHookExecutionIdException",
                f"The lifecycle event hook execution {execution_id} is not part of "
                f"{deployment_id}.",
            ) from exc
        except RuntimeError as exc:
            raise _error("LifecycleEventAlreadyCompletedException", str(exc)) from exc
        return ActionResult({"lifecycleEventHookExecutionId": execution_id})

    def update_deployment_group(self) -> ActionResult:
        backend = self.codedeploy_backend
        app = self._get_param("applicationName")
        group = backend.get_deployment_group(app, self._get_param("currentDeploymentGroupName"))
        new_name = self._get_param("newDeploymentGroupName")
        fields = {
            "deploymentConfigName": "deployment_config_name",
            "serviceRoleArn": "service_role_arn",
            "alarmConfiguration": "alarm_configuration",
            "autoRollbackConfiguration": "auto_rollback_configuration",
            "deploymentStyle": "deployment_style",
            "triggerConfigurations": "trigger_configurations",
            "blueGreenDeploymentConfiguration": "blue_green_deployment_configuration",
            "outdatedInstancesStrategy": "outdated_instances_strategy",
        }
        for param, attr in fields.items():
            value = self._get_param(param)
            if value is not None:
                setattr(group, attr, value)
        if new_name and new_name != group.deployment_group_name:
            groups = backend.deployment_groups[app]
            groups[new_name] = groups.pop(group.deployment_group_name)
            group.deployment_group_name = new_name
        return ActionResult({"hooksNotCleanedUp": []})

    def delete_deployment_group(self) -> ActionResult:
        backend = self.codedeploy_backend
        app = self._get_param("applicationName")
        name = self._get_param("deploymentGroupName")
        backend.get_deployment_group(app, name)
        del backend.deployment_groups[app][name]
        return ActionResult({"hooksNotCleanedUp": []})

    def delete_application(self) -> EmptyResult:
        backend = self.codedeploy_backend
        name = self._get_param("applicationName")
        backend.applications.pop(name, None)
        backend.deployment_groups.pop(name, None)
        return EmptyResult()

    def batch_get_deployment_groups(self) -> ActionResult:
        backend = self.codedeploy_backend
        app = self._get_param("applicationName")
        infos = [
            cd_responses._deployment_group_info(backend.get_deployment_group(app, n))
            for n in self._get_param("deploymentGroupNames") or []
        ]
        return ActionResult({"deploymentGroupsInfo": infos, "errorMessage": ""})

    def create_deployment_config(self) -> ActionResult:
        name = self._get_param("deploymentConfigName")
        if self._get_param("computePlatform") != "Lambda":
            raise _error(
                "InvalidComputePlatformException",
                "The local endpoint supports Lambda deployment configs only.",
            )
        key = (self.current_account, self.region, name)
        if name in PREDEFINED_CONFIGS or key in engine.custom_configs:
            raise _error(
                "DeploymentConfigAlreadyExistsException",
                f"A deployment configuration with the name {name} already exists.",
            )
        try:
            engine.custom_configs[key] = TrafficRouting.from_api(
                self._get_param("trafficRoutingConfig") or {}
            )
        except (DeploymentConfigError, KeyError, ValueError) as exc:
            raise _error("InvalidTrafficRoutingConfigurationException", str(exc)) from exc
        return ActionResult({"deploymentConfigId": str(uuid.uuid5(uuid.NAMESPACE_URL, name))})

    def get_deployment_config(self) -> ActionResult:
        name = self._get_param("deploymentConfigName")
        routing = PREDEFINED_CONFIGS.get(name) or engine.custom_configs.get(
            (self.current_account, self.region, name)
        )
        if routing is None:
            raise _error(
                "DeploymentConfigDoesNotExistException",
                f"The deployment configuration {name} does not exist.",
            )
        return ActionResult(
            {
                "deploymentConfigInfo": {
                    "deploymentConfigId": str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
                    "deploymentConfigName": name,
                    "computePlatform": "Lambda",
                    "trafficRoutingConfig": routing.to_api(),
                }
            }
        )

    def delete_deployment_config(self) -> EmptyResult:
        name = self._get_param("deploymentConfigName")
        if name in PREDEFINED_CONFIGS:
            raise _error(
                "InvalidOperationException",
                "Predefined deployment configurations cannot be deleted.",
            )
        engine.custom_configs.pop((self.current_account, self.region, name), None)
        return EmptyResult()

    def list_deployment_configs(self) -> ActionResult:
        names = sorted(PREDEFINED_CONFIGS) + sorted(
            n
            for (a, r, n) in engine.custom_configs
            if (a, r) == (self.current_account, self.region)
        )
        return ActionResult({"deploymentConfigsList": names})

    backend_cls.create_deployment = create_deployment
    cd_responses._deployment_info = deployment_info
    cd_responses._deployment_group_info = deployment_group_info
    for fn in (
        stop_deployment,
        put_lifecycle_event_hook_execution_status,
        update_deployment_group,
        delete_deployment_group,
        delete_application,
        batch_get_deployment_groups,
        create_deployment_config,
        get_deployment_config,
        delete_deployment_config,
        list_deployment_configs,
    ):
        setattr(response_cls, fn.__name__, fn)
