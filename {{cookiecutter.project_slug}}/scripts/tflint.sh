#!/usr/bin/env bash
# tflint over both Terraform roots with the pinned AWS ruleset from .tflint.hcl.
#
# Without tflint on PATH this says so and skips (exit 0), so `make lint` works anywhere; wherever tflint
# is installed (the workflows install it with setup-tflint) its findings fail the check.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
config="$repo_root/.tflint.hcl"

if ! command -v tflint >/dev/null 2>&1; then
  echo "tflint not installed: skipping the AWS ruleset (install tflint to run it; the workflows install it and enforce it)"
  exit 0
fi

cd "$repo_root/terraform"
# --init is a no-op when the pinned ruleset is already in the plugin cache.
tflint --init --config "$config"
tflint --recursive --config "$config" --format compact
