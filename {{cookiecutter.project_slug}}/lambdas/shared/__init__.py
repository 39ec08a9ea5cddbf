"""Code shared by the pipeline Lambdas (packaged into every pipeline zip by release-tooling package).

Only the standard library and the boto3 that ships with the Lambda runtime may be used here.
"""
