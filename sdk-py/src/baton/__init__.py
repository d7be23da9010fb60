"""Baton's Python SDK: Temporal-shaped workflows and activities, served as
an ASGI app or an AWS Lambda handler that Baton pushes work to.

Modules mirror ``temporalio``: :mod:`baton.workflow`, :mod:`baton.activity`,
:mod:`baton.common`, :mod:`baton.client`, :mod:`baton.exceptions`,
:mod:`baton.converter`, :mod:`baton.testing`; :class:`App` replaces the
long-polling ``Worker``.
"""

from baton import activity, common, converter, exceptions, workflow
from baton.app import App
from baton.client import Client, WorkflowHandle
from baton.common import RetryPolicy

__version__ = "0.1.0"

__all__ = [
    "App",
    "Client",
    "RetryPolicy",
    "WorkflowHandle",
    "__version__",
    "activity",
    "common",
    "converter",
    "exceptions",
    "workflow",
]
