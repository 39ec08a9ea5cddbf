"""Validate cookiecutter inputs before anything is written.

Exits 1 with a single ``ERROR: <field>: <problem and what is allowed>`` line for the first bad input.
Validation only: nothing here creates or changes files.
"""

from __future__ import annotations

import json
import re
import sys
import unicodedata

# The rendered context arrives as JSON inside a raw string: ``tojson`` escapes quotes, backslashes and
# non-ASCII, so no input value can break out of the literal or change this file's code.
CONTEXT = json.loads(r'{{ cookiecutter | tojson }}')

# Every AWS name the generated Terraform derives from the slug, with the longest suffix it appends and the
# service's length limit. 123456789012 stands for the 12-digit account id. tests/test_naming.py keeps this
# table in step with the names in the generated terraform/.
DERIVED_NAMES = (
    ("S3 artifact bucket", "{slug}-artifacts-123456789012", 63),
    ("S3 state bucket", "{slug}-tfstate-123456789012", 63),
    ("Lambda function", "{slug}-validate-artifact", 64),
    ("Lambda function", "{slug}-deployment-status", 64),
    ("Lambda function", "{slug}-approval-notifier", 64),
    ("IAM role", "{slug}-validate-artifact-role", 64),
    ("IAM role", "{slug}-deployment-status-role", 64),
    ("IAM role", "{slug}-approval-notifier-role", 64),
    ("IAM role", "{slug}-pipeline-trigger-role", 64),
    ("IAM role", "{slug}-state-machine-role", 64),
    ("IAM role", "{slug}-codepipeline-role", 64),
    ("EventBridge rule", "{slug}-artifact-uploaded", 64),
    ("EventBridge rule", "{slug}-release-status", 64),
    ("Step Functions state machine", "{slug}-release", 80),
    ("IAM permissions boundary policy", "{slug}-workload-boundary", 128),
)

# Commercial, GovCloud and China region codes (ap-southeast-7, mx-central-1 and friends included).
AWS_REGIONS = frozenset(
    """
    us-east-1 us-east-2 us-west-1 us-west-2
    af-south-1
    ap-east-1 ap-east-2 ap-south-1 ap-south-2 ap-southeast-1 ap-southeast-2 ap-southeast-3 ap-southeast-4
    ap-southeast-5 ap-southeast-7 ap-northeast-1 ap-northeast-2 ap-northeast-3
    ca-central-1 ca-west-1
    eu-central-1 eu-central-2 eu-west-1 eu-west-2 eu-west-3 eu-south-1 eu-south-2 eu-north-1
    il-central-1
    me-south-1 me-central-1
    mx-central-1
    sa-east-1
    us-gov-east-1 us-gov-west-1
    cn-north-1 cn-northwest-1
    """.split()
)

CHOICES = {
    "python_runtime": ("python3.12", "python3.13"),
    "deployment_strategy": ("Canary10Percent5Minutes", "Linear10PercentEvery1Minute", "AllAtOnce"),
    "manual_approval": ("no", "yes"),
}

SLUG_PATTERN = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
# S3 general purpose bucket naming rules (docs.aws.amazon.com/AmazonS3/latest/userguide/
# bucketnamingrules.html): reserved prefixes and suffixes. The slug starts every bucket name, and
# teams name further resources after it, so it is held to both.
RESERVED_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
RESERVED_BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
# Unicode categories that are not visible text: controls (incl. DEL, U+0085), format characters
# (zero-width, bidi overrides), line/paragraph separators, surrogates, private use, unassigned.
INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})
# Letters that render as blank space (Hangul fillers, braille blank, Mongolian vowel separator).
BLANK_LOOKING = frozenset("\u115f\u1160\u3164\uffa0\u2800\u180e")
# GitHub: owner is 1-39 letters/digits/single hyphens, not starting or ending with one; the repository
# name is letters, digits, '.', '_' and '-', at most 100 characters, and neither '.' nor '..'.
GITHUB_OWNER_PATTERN = re.compile(r"[A-Za-z0-9](-?[A-Za-z0-9])*")
GITHUB_NAME_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,100}")
EMAIL_PATTERN = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](-*[A-Za-z0-9])*(\.[A-Za-z0-9](-*[A-Za-z0-9])*)+")


class InputError(Exception):
    """One bad cookiecutter input: ``field`` names it, the message says what is allowed."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")


def max_slug_length() -> int:
    return min(limit - len(pattern.format(slug="")) for _, pattern, limit in DERIVED_NAMES)


def check_project_name(value: str) -> None:
    if not value.strip():
        raise InputError("project_name", "is empty; give the service a name, e.g. 'Orders Service'")
    if len(value) > 100:
        raise InputError("project_name", f"is {len(value)} characters; use at most 100")
    for ch in value:
        if unicodedata.category(ch) in INVISIBLE_CATEGORIES:
            raise InputError(
                "project_name",
                f"contains the invisible or control character U+{ord(ch):04X} "
                f"({unicodedata.name(ch, 'a control character')}); use plain visible text",
            )
    if not any(not ch.isspace() and ch not in BLANK_LOOKING for ch in value):
        raise InputError("project_name", "has no visible character; give the service a name, e.g. 'Orders Service'")


def check_project_slug(value: str) -> None:
    if not SLUG_PATTERN.fullmatch(value):
        raise InputError(
            "project_slug",
            f"{value!r} is not a valid slug; use lowercase letters, digits and single hyphens, "
            "starting with a letter and not ending with a hyphen (e.g. 'orders-service')",
        )
    for prefix in RESERVED_BUCKET_PREFIXES:
        if (value + "-").startswith(prefix):
            raise InputError(
                "project_slug",
                f"{value!r} would start the S3 bucket names with {prefix!r}, a prefix AWS reserves; "
                "choose a slug that does not start with it",
            )
    for suffix in RESERVED_BUCKET_SUFFIXES:
        if value.endswith(suffix):
            raise InputError(
                "project_slug", f"{value!r} ends with {suffix!r}, a suffix AWS reserves for S3 names; drop it"
            )
    for kind, pattern, limit in DERIVED_NAMES:
        name = pattern.format(slug=value)
        if len(name) > limit:
            raise InputError(
                "project_slug",
                f"{value!r} is {len(value)} characters, so the {kind} name {name!r} would be "
                f"{len(name)} characters, over AWS's limit of {limit}; use at most {max_slug_length()} characters",
            )


def check_aws_region(value: str) -> None:
    if value not in AWS_REGIONS:
        raise InputError(
            "aws_region",
            f"{value!r} is not an AWS region code; use one such as us-east-1, us-east-2, eu-west-1, ap-southeast-2",
        )


def check_github_repository(value: str) -> None:
    owner, sep, name = value.partition("/")
    valid = (
        sep == "/"
        and len(owner) <= 39
        and GITHUB_OWNER_PATTERN.fullmatch(owner) is not None
        and GITHUB_NAME_PATTERN.fullmatch(name) is not None
        and name not in (".", "..")
        and not name.lower().endswith(".git")
    )
    if not valid:
        raise InputError(
            "github_repository",
            f"{value!r} is not of the form owner/name (e.g. 'my-org/orders-service'); the owner is letters, "
            "digits and single hyphens, the name letters, digits, '.', '_' and '-', without a '.git' "
            "ending (the OIDC trust compares the bare name)",
        )


def check_choice(field: str, value: str) -> None:
    allowed = CHOICES[field]
    if value not in allowed:
        raise InputError(field, f"{value!r} is not supported; choose one of {', '.join(allowed)}")


def check_notification_email(value: str) -> None:
    if "{" in value or "}" in value:
        # ${...} and %{...} are template syntax inside Terraform strings.
        raise InputError(
            "notification_email",
            f"{value!r} contains a curly brace; Terraform reads dollar-brace and percent-brace as "
            "template syntax. Give a plain address like ops@example.com",
        )
    if value and (len(value) > 254 or not EMAIL_PATTERN.fullmatch(value)):
        raise InputError(
            "notification_email",
            f"{value!r} is not an email address; give one like ops@example.com, or leave it empty for none",
        )


def validate(context: dict) -> None:
    check_project_name(context["project_name"])
    check_project_slug(context["project_slug"])
    check_aws_region(context["aws_region"])
    check_github_repository(context["github_repository"])
    for field in CHOICES:
        check_choice(field, context[field])
    check_notification_email(context["notification_email"])


def main() -> int:
    try:
        validate(CONTEXT)
    except InputError as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
