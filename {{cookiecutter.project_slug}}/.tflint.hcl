# tflint for both Terraform roots (scripts/tflint.sh runs it over terraform/ recursively).
# `tflint --init` downloads the pinned AWS ruleset; in CI set GITHUB_TOKEN to avoid GitHub's rate limit.

config {
  call_module_type = "local"
}

# Bundled with tflint: language-level checks (unused declarations, typed and documented variables...).
plugin "terraform" {
  enabled = true
  preset  = "recommended"
}

# Invalid instance types, runtimes, names and other values AWS would only reject at apply time.
plugin "aws" {
  enabled = true
  version = "0.40.0"
  source  = "github.com/terraform-linters/tflint-ruleset-aws"
}

rule "terraform_documented_variables" {
  enabled = true
}

rule "terraform_documented_outputs" {
  enabled = true
}

rule "terraform_naming_convention" {
  enabled = true
}
