terraform {
  # 1.10 brings S3-native state locking (use_lockfile), which replaces the DynamoDB lock table.
  required_version = ">= 1.10"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }

  # Partial configuration: release-tooling terraform init --backend passes bucket, key, region,
  # use_lockfile=true and encrypt=true from TF_STATE_BUCKET / AWS_REGION, so no account-specific
  # value is committed. Linting runs `terraform init -backend=false`.
  backend "s3" {}
}
