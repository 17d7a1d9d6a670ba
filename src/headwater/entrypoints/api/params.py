"""Path parameters of the resource routes, described once."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

ConnectionId = Annotated[
    str, Path(max_length=40, description="A connection of the workspace (`conn_…`).")
]
PipelineId = Annotated[
    str, Path(max_length=40, description="A pipeline of the workspace (`pl_…`).")
]
RunId = Annotated[str, Path(max_length=40, description="A run of the workspace (`run_…`).")]
ProfileId = Annotated[str, Path(max_length=80, description="A profile of the workspace.")]
PropertyPath = Annotated[
    str,
    Path(
        max_length=200,
        description="A Customer Model property: `plan`, or `address.city` inside an object.",
    ),
]
