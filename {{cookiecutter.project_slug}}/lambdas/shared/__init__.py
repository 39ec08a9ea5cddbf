"""Code shared by the pipeline Lambdas (`release-tooling package` puts it in every pipeline zip).

Only the standard library and the boto3 that ships with the Lambda runtime may be used here.
"""
