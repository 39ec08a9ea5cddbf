"""Save and load the endpoint's whole state: every moto backend in use plus the adapter's own parts.

moto keeps each service's state in a module-level `BackendDict` (account -> region -> backend).
`dump` pickles the contents of every BackendDict in use, in one pickle so that references between
services (a Lambda function's logs backend, say) stay shared, together with the adapter parts the
server names (state the adapter keeps outside moto, e.g. custom CodeDeploy configs). `load` puts
them back into the live BackendDicts of a fresh server before it serves its first request.

What cannot be carried is handled explicitly rather than left to fail somewhere deep in pickle:
- a BackendDict referenced from inside a backend is pickled as a reference to the live one of the
  same module attribute, never as a copy;
- locks, reentrant locks and conditions are pickled as fresh ones, events as fresh ones in the
  same state (a snapshot is only taken when nothing holds them: see `require_quiescent` in the
  server);
- private keys (moto's KMS and ACM keys are `cryptography` objects, which do not pickle) are
  carried as PKCS#8 DER and loaded back;
- a thread, an open file or socket, or anything else pickle refuses stops the snapshot with
  SnapshotStateError naming where it was found (the caller then simply keeps no snapshot).
"""

from __future__ import annotations

import collections
import functools
import hashlib
import io
import os
import pickle
import sys
import threading
import weakref
from pathlib import Path
from typing import Any

FORMAT = 1
_LOCK = type(threading.Lock())
_RLOCK = type(threading.RLock())


class SnapshotStateError(Exception):
    """The state could not be saved or loaded; the message says what and where."""


# The tooling's sources that decide what an applied environment holds: the endpoint and how the
# local run applies Terraform to it (an edited checkout of the same version counts as another).
_STATE_SOURCES = (
    "local_aws/**/*.py",
    "local/environment.py",
    "local/snapshot.py",
    "local/terraform_roots.py",
    "terraform.py",
)


@functools.cache
def versions() -> dict[str, str]:
    """What a snapshot is only valid for: this format, the tooling (its version and a digest of
    the sources in _STATE_SOURCES), moto and Python."""
    from importlib import metadata

    from .. import __version__

    package = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    sources = {path for pattern in _STATE_SOURCES for path in package.glob(pattern)}
    for source in sorted(sources):
        digest.update(source.relative_to(package).as_posix().encode() + b"\0")
        digest.update(source.read_bytes())
    return {
        "format": str(FORMAT),
        "tooling": f"{__version__}+{digest.hexdigest()[:12]}",
        "moto": metadata.version("moto"),
        "python": f"{sys.version_info[0]}.{sys.version_info[1]}",
    }


def _backend_dicts() -> dict[str, Any]:
    """Every BackendDict attribute of an imported moto module, by "module:attribute"."""
    from moto.core.base_backend import BackendDict

    found: dict[str, Any] = {}
    for name, module in list(sys.modules.items()):
        if not name.startswith("moto.") or module is None:
            continue
        for attr, value in list(vars(module).items()):
            if isinstance(value, BackendDict):
                found.setdefault(f"{name}:{attr}", value)
    return found


def _in_use() -> dict[str, Any]:
    """The BackendDicts holding state, keyed by the name they are found under on load.

    A BackendDict re-exported by another module (moto.x.models.x_backends imported into
    moto.x.responses) is saved once, under its defining module's name when that is known."""
    from moto.core.base_backend import BackendDict

    by_id: dict[int, str] = {}
    for key, value in sorted(_backend_dicts().items(), key=lambda kv: (".models" not in kv[0],)):
        by_id.setdefault(id(value), key)
    return {by_id[id(bd)]: bd for bd in BackendDict._instances if id(bd) in by_id}


class _Pickler(pickle.Pickler):
    def __init__(self, file, names: dict[int, str]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.names = names

    def persistent_id(self, obj: Any):
        from moto.core.base_backend import BackendDict

        if isinstance(obj, BackendDict):
            name = self.names.get(id(obj))
            if name is None:
                raise SnapshotStateError(
                    f"a BackendDict of {obj.service_name!r} is referenced but not found in any "
                    "moto module"
                )
            return ("backend-dict", name)
        return None

    def reducer_override(self, obj: Any):
        if isinstance(obj, _LOCK):
            return (threading.Lock, ())
        if isinstance(obj, _RLOCK):
            return (threading.RLock, ())
        if isinstance(obj, threading.Condition):
            return (threading.Condition, ())
        if isinstance(obj, (weakref.WeakValueDictionary, weakref.WeakKeyDictionary)):
            # moto's Lambda storage indexes functions by ARN weakly; the functions themselves are
            # held elsewhere in the state, so the rebuilt index finds them alive.
            return (type(obj), (dict(obj),))
        if isinstance(obj, weakref.WeakSet):
            return (weakref.WeakSet, (list(obj),))
        if isinstance(obj, collections.defaultdict) and _is_local(obj.default_factory):
            return (collections.defaultdict, (_plain_factory(obj.default_factory), dict(obj)))
        if isinstance(obj, threading.Event):
            return (_event, (obj.is_set(),))
        if _is_private_key(obj):
            from cryptography.hazmat.primitives import serialization

            der = obj.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            return (_private_key, (der,))
        if isinstance(obj, threading.Thread):
            raise SnapshotStateError(
                f"a thread ({obj.name}) is part of the state; a snapshot needs the endpoint idle"
            )
        if isinstance(obj, io.IOBase) and not isinstance(obj, (io.BytesIO, io.StringIO)):
            raise SnapshotStateError(f"an open file or stream ({obj!r}) is part of the state")
        return NotImplemented


def _is_local(factory: Any) -> bool:
    return "<lambda>" in getattr(factory, "__qualname__", "") or "<locals>" in getattr(
        factory, "__qualname__", ""
    )


def _plain_factory(factory: Any):
    """`lambda: {}` as dict (moto's Lambda aliases): the type of an empty default, when it is one.

    A factory that makes anything else cannot be carried, and says so."""
    sample = factory()
    if type(sample) in (dict, list, set, int, float, str, bytes, tuple) and not sample:
        return type(sample)
    raise SnapshotStateError(
        f"a defaultdict's factory {factory.__qualname__} makes {sample!r}, which a snapshot "
        "cannot rebuild"
    )


def _event(is_set: bool) -> threading.Event:
    event = threading.Event()
    if is_set:
        event.set()
    return event


def _is_private_key(obj: Any) -> bool:
    module = type(obj).__module__
    return module.startswith("cryptography.") and hasattr(obj, "private_bytes")


def _private_key(der: bytes):
    from cryptography.hazmat.primitives import serialization

    return serialization.load_der_private_key(der, password=None)


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, live: dict[str, Any]) -> None:
        super().__init__(file)
        self.live = live

    def persistent_load(self, pid: Any):
        kind, name = pid
        if kind != "backend-dict":
            raise pickle.UnpicklingError(f"unknown persistent reference {pid!r}")
        return _live_backend_dict(name, self.live)


def _live_backend_dict(name: str, live: dict[str, Any]):
    if name not in live:
        import importlib

        module_name, attr = name.split(":", 1)
        try:
            live[name] = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise SnapshotStateError(f"moto has no {name} ({exc})") from None
    return live[name]


def dump(path: Path, adapter: dict[str, Any]) -> dict[str, Any]:
    """Write the state to `path` (atomically) and say what it holds."""
    from moto.core.base_backend import backend_lock

    path = Path(path)
    buffer = io.BytesIO()
    with backend_lock:
        in_use = _in_use()
        names = {id(bd): key for key, bd in _backend_dicts().items()}
        names.update({id(bd): key for key, bd in in_use.items()})
        state = {
            "versions": versions(),
            "moto": {key: dict(bd) for key, bd in in_use.items()},
            "adapter": adapter,
        }
        for attempt in range(3):
            buffer.seek(0)
            buffer.truncate()
            try:
                _Pickler(buffer, names).dump(state)
                break
            except SnapshotStateError:
                raise
            except RuntimeError:
                # A background evaluator (CloudWatch alarms) changed a dict mid-walk: try again.
                if attempt == 2:
                    raise SnapshotStateError("the state kept changing while it was saved") from None
            except (pickle.PicklingError, TypeError, AttributeError) as exc:
                raise SnapshotStateError(f"the endpoint's state cannot be saved: {exc}") from None
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(buffer.getvalue())
    os.replace(tmp, path)
    return {"bytes": buffer.tell(), "backends": sorted(in_use)}


def load(path: Path) -> dict[str, Any]:
    """Load a state written by `dump` into moto's live backends; returns the adapter parts.

    Nothing is changed unless the whole file loads: moto's backends are replaced only after it did.
    """
    from moto.core.base_backend import BackendDict, backend_lock

    live: dict[str, Any] = {}
    try:
        with Path(path).open("rb") as fh:
            state = _Unpickler(fh, live).load()
    except SnapshotStateError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure to unpickle: one line, the cold path
        detail = f"{type(exc).__name__}: {exc}"
        raise SnapshotStateError(f"the saved state does not load: {detail}") from None
    if state.get("versions") != versions():
        raise SnapshotStateError(
            f"the saved state is of {state.get('versions')}, this endpoint is {versions()}"
        )
    with backend_lock:
        for name, accounts in state["moto"].items():
            target = _live_backend_dict(name, live)
            dict.clear(target)
            for account, backend in accounts.items():
                dict.__setitem__(target, account, backend)
            if target not in BackendDict._instances:
                BackendDict._instances.append(target)
    return state["adapter"]
