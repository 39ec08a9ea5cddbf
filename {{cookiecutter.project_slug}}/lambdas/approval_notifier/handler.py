"""Ask a human to approve the production deployment.

Called by the ApproveProduction state (lambda:invoke.waitForTaskToken). Publishes one SNS message
with the release's commit, the execution, and the exact commands that approve or reject it. The
raw task token is deliberately not published: release-tooling approve reads it from the execution
history, which needs states:GetExecutionHistory, so an email alone cannot approve a release. The
message carries a short fingerprint of the token so the approver can tell which wait they answer.
"""

import hashlib
import os
from collections.abc import Mapping
from typing import Any

from shared.clients import client
from shared.config import require_env, require_str
from shared.log import get_logger, lambda_entrypoint

logger = get_logger("approval_notifier")


def token_fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:12]


def build_message(event: Mapping[str, Any], workflow_url: str | None = None) -> tuple[str, str]:
    """Return (subject, body). Pure. With `workflow_url`, the body leads with the Approve release
    workflow (GitHub), which answers with the approve role: no console access needed."""
    commit = require_str(event, "commit_sha")
    execution = require_str(event, "execution_name")
    state_machine = require_str(event, "state_machine_arn")
    token = require_str(event, "task_token")
    smoke = event.get("smoke_summary") or "smoke tests passed"
    version = event.get("staging_version")

    def command(action: str) -> str:
        return (
            f"release-tooling approve {action} --execution {execution}"
            f" --state-machine {state_machine}"
        )

    subject = f"Approve release {commit[:12]} to production?"
    # SNS subjects are limited to 100 characters.
    subject = subject[:100]
    lines = [
        f"Release {commit} is live on the staging alias"
        + (f" (version {version})" if version is not None else "")
        + " and waits for approval before production.",
        "",
        f"Smoke tests: {smoke}",
        f"Execution:   {execution}",
        f"ARN:         {event.get('execution_arn', '-')}",
        f"Task token fingerprint: {token_fingerprint(token)}",
        "",
    ]
    if workflow_url:
        lines += [
            "Answer on GitHub: run the Approve release workflow with this execution name",
            f"  {workflow_url}",
            f"  (Run workflow > execution: {execution} > decision: approve or reject)",
            "",
            "Or from a shell with access to the pipeline's account:",
        ]
    lines += [
        "Approve:",
        "  " + command("approve"),
        "Reject (rolls staging back):",
        "  " + command("reject") + ' --reason "why"',
        "",
        "Unanswered, the request times out and the release is rolled back.",
    ]
    return subject, "\n".join(lines)


@lambda_entrypoint(logger)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    topic = require_env("TOPIC_ARN")
    subject, message = build_message(event, os.environ.get("APPROVAL_WORKFLOW_URL"))
    response = client("sns").publish(
        TopicArn=topic,
        Subject=subject,
        Message=message,
        MessageAttributes={
            "event": {"DataType": "String", "StringValue": "approval_requested"},
            "commit_sha": {"DataType": "String", "StringValue": event["commit_sha"]},
        },
    )
    logger.info("approval requested", extra={"message_id": response["MessageId"]})
    return {"message_id": response["MessageId"], "topic_arn": topic}
