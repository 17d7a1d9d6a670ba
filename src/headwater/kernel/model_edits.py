"""Pure edits of a Customer Model: add, rename and drop a property.

Each edit returns the new model and the column changes the warehouse must apply in
the same step, so the tables always match the model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from headwater.kernel.errors import InvalidInput, NotFound
from headwater.kernel.model import Column, CustomerModel, Property, PropertyType, check_name


@dataclass(frozen=True)
class ColumnChanges:
    added: tuple[Column, ...] = ()
    renamed: tuple[tuple[str, str], ...] = ()  # (old column, new column)
    dropped: tuple[str, ...] = ()


def _split(path: str) -> tuple[list[str], str]:
    parts = path.split(".")
    return parts[:-1], parts[-1]


Props = tuple[Property, ...]


def _edit(props: Props, parents: list[str], fn: Callable[[Props], Props], where: str) -> Props:
    if not parents:
        return fn(props)
    head, rest = parents[0], parents[1:]
    out = []
    found = False
    for p in props:
        if p.name == head:
            if p.type is not PropertyType.OBJECT:
                raise InvalidInput(f"{head!r} is not an object property", where)
            p = replace(p, properties=_edit(p.properties, rest, fn, where))
            found = True
        out.append(p)
    if not found:
        raise NotFound(f"{where}: no object property {head!r}")
    return tuple(out)


def add_property(
    model: CustomerModel, path: str, ptype: PropertyType, description: str = ""
) -> tuple[CustomerModel, ColumnChanges]:
    """Add a (possibly nested) leaf property; ``object`` types start empty."""
    parents, name = _split(path)
    check_name(name, path)
    new = Property(name, ptype, description)

    def add(props: Props) -> Props:
        if any(p.name == name for p in props):
            raise InvalidInput(f"property {path!r} already exists", path)
        return (*props, new)

    updated = CustomerModel(_edit(model.properties, parents, add, path))
    before = {c.name for c in model.columns}
    added = tuple(c for c in updated.columns if c.name not in before)
    return updated, ColumnChanges(added=added)


def rename_property(
    model: CustomerModel, path: str, new_name: str
) -> tuple[CustomerModel, ColumnChanges]:
    parents, name = _split(path)
    check_name(new_name, path)
    if model.find(path) is None:
        raise NotFound(f"no property {path!r} in the Customer Model")

    def rename(props: Props) -> Props:
        if any(p.name == new_name for p in props):
            raise InvalidInput(f"property {new_name!r} already exists", path)
        return tuple(replace(p, name=new_name) if p.name == name else p for p in props)

    updated = CustomerModel(_edit(model.properties, parents, rename, path))
    prefix_old = path.replace(".", "_")
    prefix_new = ".".join([*parents, new_name]).replace(".", "_")
    renamed = tuple(
        (c.name, prefix_new + c.name[len(prefix_old) :])
        for c in model.columns
        if c.path == path or c.path.startswith(path + ".")
    )
    return updated, ColumnChanges(renamed=renamed)


def drop_property(model: CustomerModel, path: str) -> tuple[CustomerModel, ColumnChanges]:
    parents, name = _split(path)
    if model.find(path) is None:
        raise NotFound(f"no property {path!r} in the Customer Model")

    def drop(props: Props) -> Props:
        return tuple(p for p in props if p.name != name)

    updated = CustomerModel(_edit(model.properties, parents, drop, path))
    dropped = tuple(
        c.name for c in model.columns if c.path == path or c.path.startswith(path + ".")
    )
    return updated, ColumnChanges(dropped=dropped)
