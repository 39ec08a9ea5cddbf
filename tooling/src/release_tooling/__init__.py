"""Release tooling for services generated from the serverless CI/CD template.

One package, installed into each service repository's virtualenv by exact version: packaging, the
Terraform runner, the plan comment, the release waiter, the ASL checks and diagram, and the local
rehearsal (embedded AWS with IAM enforced). The repository keeps only what is its own.
"""

__version__ = "0.1.0"

# The release contract between a repository and this package: the execution input, the
# manifest and the S3 keys (release_tooling.package). Bumped on any incompatible change, with a
# CHANGELOG entry.
SCHEMA_VERSION = 1
