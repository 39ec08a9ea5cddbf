"""Named exceptions.

Step Functions sees the exception class name as the state's ``Error`` and the message as its
``Cause``, so every failure the pipeline can report has its own class and a message that says
what was wrong and how to fix it.
"""


class PipelineError(Exception):
    """Base class for every error a pipeline Lambda raises on purpose."""


class ConfigurationError(PipelineError):
    """A required environment variable is missing or malformed (fix the Terraform config)."""


class InvalidInputError(PipelineError):
    """The event lacks a field or has one of the wrong type (fix the caller / state machine)."""
