"""The catalog: a root holding ``<name>.lance`` datasets, and the cache of open datasets.

A root is a local directory or any URI Lance opens (``s3://``, ``gs://``, ``hf://``).
Every ``<name>.lance`` directly under it is table ``<name>``. Opening a Lance dataset
reads its manifest and warms caches, so each dataset is opened once per connection and
kept; before each statement the cached handle asks for the latest version number, which
costs one listing, and moves to it only when another writer committed a newer one.
Old versions never change, so a handle on one is kept as it is.
"""

from __future__ import annotations

import datetime as dt
import os
import posixpath
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

import lance
from lance.dataset import Version

from lancesql.errors import OperationalError, ProgrammingError

#: A version as users write it: a number, a tag name, or a point in time.
VersionRef: TypeAlias = int | str | dt.datetime | None

SUFFIX = ".lance"

#: Where Lance keeps a branch inside its dataset: ``<uri>/tree/<branch>`` opens, reads
#: and writes that branch as a dataset of its own (tags and branches stay shared).
BRANCH_DIR = "/tree/"

#: The name of every dataset's first line of versions, which no branch may take.
MAIN = "main"


def branch_uri(uri: str, branch: str | None) -> str:
    """The URI that opens ``branch`` of the dataset at ``uri`` (``main``: ``uri`` itself).

    >>> branch_uri("/r/t.lance", "exp"), branch_uri("/r/t.lance/tree/exp", "main")
    ('/r/t.lance/tree/exp', '/r/t.lance')
    """
    base = split_branch(uri)[0]
    return base if branch in (None, MAIN) else f"{base}{BRANCH_DIR}{branch}"


def split_branch(uri: str) -> tuple[str, str | None]:
    """A dataset URI and the branch it opens (None: main).

    >>> split_branch("/r/t.lance/tree/exp"), split_branch("/r/tree/t.lance")
    (('/r/t.lance', 'exp'), ('/r/tree/t.lance', None))
    """
    base, sep, branch = uri.rpartition(BRANCH_DIR)
    if sep and base.endswith(SUFFIX) and branch and "/" not in branch:
        return base, branch
    return uri, None


def is_uri(name: str) -> bool:
    """Whether ``name`` is a path or URI rather than a bare table name.

    >>> is_uri("train"), is_uri("./x.lance"), is_uri("s3://b/x.lance"), is_uri("x.lance")
    (False, True, True, True)
    """
    return "/" in name or "\\" in name or name.endswith(SUFFIX) or "://" in name


@dataclass(frozen=True)
class TableRef:
    """One dataset at one version: what a table reference in SQL resolves to."""

    uri: str
    version: VersionRef = None


class Catalog:
    """Names to datasets under one root, with a per-connection cache of open handles."""

    def __init__(self, root: str | os.PathLike[str], storage_options: Mapping[str, str] | None = None):
        root = os.fspath(root)
        self.storage_options: dict[str, str] | None = dict(storage_options) if storage_options else None
        self.is_local = "://" not in root or root.startswith("file://")
        if self.is_local:
            root = os.path.abspath(root.removeprefix("file://"))
            if not os.path.isdir(root):
                raise OperationalError(
                    f"root {root!r} does not exist or is not a directory: create it "
                    f"(mkdir -p {root}) or pass the directory that holds your *.lance datasets"
                )
        self.root = root.rstrip("/")
        #: The branch that bare table names read and write (``USE BRANCH``); the
        #: connection points this at its ``branch`` setting.
        self.current_branch: Callable[[], str | None] = lambda: None
        self._latest: dict[str, lance.LanceDataset] = {}
        # the stamp of each cached handle's manifest: a dataset dropped and created again
        # by another connection has a new manifest at the same version number
        self._stamps: dict[str, tuple[int, int] | None] = {}
        self._pinned: dict[tuple[str, int], lance.LanceDataset] = {}
        self._lock = threading.Lock()

    # -- names ---------------------------------------------------------------------------
    def uri_for(self, name: str) -> str:
        """The URI of table ``name`` under the root (which may not exist yet)."""
        return f"{self.root}/{name}{SUFFIX}"

    def resolve_uri(self, name_or_uri: str, branch: str | None = None) -> str:
        """A bare name is a table under the root; anything path-like is taken as a URI.

        A relative path means the root, in every statement, reading and writing alike
        (``'subsets/x.lance'`` is ``<root>/subsets/x.lance``, on a remote root too); an
        absolute path, ``~/...`` or a URI with a scheme is taken as written. With
        ``branch`` the URI opens that branch (which must exist); without it, a bare name of
        a table that has the connection's current branch (``USE BRANCH``) opens that
        branch, and every other name its main line.

        >>> c = Catalog.__new__(Catalog)
        >>> c.root, c.is_local, c.current_branch = "/data", True, lambda: None
        >>> c.resolve_uri("t"), c.resolve_uri("subsets/x.lance"), c.resolve_uri("./y.lance")
        ('/data/t.lance', '/data/subsets/x.lance', '/data/y.lance')
        >>> c.resolve_uri("/abs/z.lance"), c.resolve_uri("s3://b/z.lance/")
        ('/abs/z.lance', 's3://b/z.lance')
        >>> c.root, c.is_local = "s3://bucket/db", False
        >>> c.resolve_uri("./subsets/x.lance")
        's3://bucket/db/subsets/x.lance'
        """
        uri = self._resolve(name_or_uri)
        if branch is not None:
            return self.branch_of(uri, branch)
        if not is_uri(name_or_uri):
            current = self.current_branch()
            if current not in (None, MAIN) and self.has_branch(uri, current):
                return branch_uri(uri, current)
        return uri

    def _resolve(self, name_or_uri: str) -> str:
        if not is_uri(name_or_uri):
            return self.uri_for(name_or_uri)
        if "://" in name_or_uri:
            return name_or_uri.rstrip("/")
        path = os.path.expanduser(name_or_uri)
        if os.path.isabs(path):
            return os.path.normpath(path)
        if self.is_local:
            return os.path.normpath(os.path.join(self.root, path))
        return f"{self.root}/{posixpath.normpath(path)}"

    def branch_of(self, uri: str, branch: str) -> str:
        """The URI of ``branch`` of the dataset at ``uri``, or a ProgrammingError that lists
        the branches it has."""
        if not isinstance(branch, str) or not branch:
            raise ProgrammingError(f"a branch is named by a string, not {branch!r}")
        base = split_branch(uri)[0]
        if branch == MAIN:
            return base
        if not self.has_branch(base, branch):
            raise self.unknown_branch(base, branch)
        return branch_uri(base, branch)

    def has_branch(self, uri: str, branch: str) -> bool:
        """Whether the dataset at ``uri`` has branch ``branch`` (one file test when local)."""
        base = split_branch(uri)[0]
        if "://" not in base:
            return os.path.isfile(os.path.join(base, "_refs", "branches", f"{branch}.json"))
        try:
            return branch in self._open_latest(base).branches.list()
        except ProgrammingError:
            return False

    def branches(self, uri: str) -> dict[str, Any]:
        """The branches of the dataset at ``uri``, by name, as Lance lists them."""
        return dict(self._open_latest(split_branch(uri)[0]).branches.list())

    def unknown_branch(self, uri: str, branch: str) -> ProgrammingError:
        """The error for a branch the dataset at ``uri`` does not have."""
        name = self.name_of(uri)
        known = ", ".join(repr(b) for b in sorted(self.branches(uri))) or "none"
        return ProgrammingError(
            f"table {name!r} has no branch {branch!r} (branches: 'main', {known}); create it "
            f"with ALTER TABLE {name} CREATE BRANCH '{branch}'"
        )

    def name_of(self, uri: str) -> str:
        """The table name for messages: ``train`` for ``<root>/train.lance`` (or one of its
        branches), else the URI."""
        uri = split_branch(uri)[0]
        prefix = self.root + "/"
        if uri.startswith(prefix) and uri.endswith(SUFFIX) and "/" not in uri[len(prefix) :]:
            return uri[len(prefix) : -len(SUFFIX)]
        return uri

    def table_names(self) -> list[str]:
        """The tables under the root, sorted."""
        entries = os.listdir(self.root) if self.is_local else self._list_remote()
        # ``_views.lance`` holds the root's views (see lancesql.views): not a table
        return sorted(e[: -len(SUFFIX)] for e in entries if e.endswith(SUFFIX) and e != f"_views{SUFFIX}")

    def _list_remote(self) -> list[str]:
        """The entries under a remote root, listed by Lance itself.

        Lance's directory namespace lists with the same object-store client and the same
        ``storage_options`` (endpoint, keys, region) that open the datasets, which
        pyarrow's filesystems would need translated store by store.
        """
        # Imported here: Lance's namespace client takes seconds to import, and only a
        # remote root's listing needs it.
        from lance.namespace import DirectoryNamespace
        from lance_namespace import ListTablesRequest

        options = {f"storage.{k}": v for k, v in (self.storage_options or {}).items()}
        try:
            namespace = DirectoryNamespace(root=self.root, manifest_enabled="false", **options)
            names: list[str] = []
            token = None
            while True:
                page = namespace.list_tables(ListTablesRequest(id=[], page_token=token))
                names.extend(page.tables or [])
                token = page.page_token
                if not token:
                    return [f"{n}{SUFFIX}" for n in names]
        except Exception as exc:
            reason = str(exc).splitlines()[0][:300]
            raise OperationalError(
                f"cannot list the tables under {self.root}: {reason}; check the root and "
                "storage_options, or name a dataset by its URI (FROM 'scheme://.../x.lance')"
            ) from exc

    def exists(self, uri: str) -> bool:
        """Whether a dataset is at ``uri`` now (cheap for local paths). A cached handle is
        no proof: another connection may have dropped the table since."""
        if "://" not in uri:
            return os.path.isdir(os.path.join(uri, "_versions"))
        try:
            self.open(TableRef(uri))
            return True
        except ProgrammingError:
            return False

    # -- datasets ------------------------------------------------------------------------
    def open(self, ref: TableRef) -> lance.LanceDataset:
        """The dataset ``ref`` names, at its version (the latest when ``None``)."""
        uri = ref.uri
        latest = self._open_latest(uri)
        if ref.version is None:
            return latest
        if isinstance(ref.version, str):
            # a tag names a version of the branch it was made on, whichever is asked
            tagged = self._tag_branch(latest, ref.version)
            if tagged is not None and tagged != split_branch(uri)[1]:
                uri = branch_uri(uri, tagged)
                latest = self._open_latest(uri)
        number = self.resolve_version(latest, uri, ref.version)
        key = (uri, number)
        with self._lock:
            pinned = self._pinned.get(key)
        if pinned is not None and not _manifest_kept(uri, number):
            # another process cleaned this version up since it was cached
            with self._lock:
                self._pinned.pop(key, None)
            raise self._missing_version(latest, uri, number)
        if pinned is None:
            try:
                pinned = latest.checkout_version(number)
            except (OSError, ValueError) as exc:
                raise self._missing_version(latest, uri, number) from exc
            with self._lock:
                self._pinned[key] = pinned
        return pinned

    @staticmethod
    def _tag_branch(ds: lance.LanceDataset, tag: str) -> str | None:
        """The branch tag ``tag`` points into (None: main or no such tag)."""
        try:
            tags: dict[str, Any] = dict(ds.tags.list())
        except (OSError, ValueError):
            return None
        return (tags.get(tag) or {}).get("branch") or None

    def latest(self, uri: str) -> lance.LanceDataset:
        """The newest version of the dataset at ``uri``."""
        return self._open_latest(uri)

    def forget(self, uri: str) -> None:
        """Drop cached handles of ``uri`` and its branches (after DROP TABLE, an
        overwrite, DROP BRANCH)."""
        def gone(key: str) -> bool:
            return key == uri or key.startswith(uri + BRANCH_DIR)

        with self._lock:
            for name in [k for k in self._latest if gone(k)]:
                del self._latest[name]
                self._stamps.pop(name, None)
            for key in [k for k in self._pinned if gone(k[0])]:
                del self._pinned[key]

    def refreshed(self, ds: lance.LanceDataset) -> None:
        """Record ``ds`` as the newest handle of its dataset, after a write through it."""
        uri = _uri_of(ds)
        stamp = _manifest_stamp(uri, ds.version)
        with self._lock:
            self._latest[uri] = ds
            self._stamps[uri] = stamp

    def _open_latest(self, uri: str) -> lance.LanceDataset:
        with self._lock:
            ds = self._latest.get(uri)
            stamp = self._stamps.get(uri)
        if ds is not None and _manifest_stamp(uri, ds.version) != stamp:
            self.forget(uri)  # dropped (and perhaps created again) since it was cached
            ds = None
        if ds is None:
            try:
                ds = lance.dataset(uri, storage_options=self.storage_options)
            except (OSError, ValueError) as exc:
                raise self._missing_table(uri, exc) from exc
        else:
            try:
                newest = ds.latest_version
            except (OSError, ValueError):
                self.forget(uri)
                raise self._missing_table(uri, None) from None
            if newest != ds.version:
                ds = ds.checkout_version(newest)
        stamp = _manifest_stamp(uri, ds.version)
        with self._lock:
            self._latest[uri] = ds
            self._stamps[uri] = stamp
        return ds

    # -- versions ------------------------------------------------------------------------
    def resolve_version(self, ds: lance.LanceDataset, uri: str, version: VersionRef) -> int:
        """The version number that ``version`` (number, tag or time) names in ``ds``."""
        if isinstance(version, bool):
            raise ProgrammingError(f"a version must be a number, a tag name or a timestamp, not {version!r}")
        if isinstance(version, int):
            # ds is the newest handle: ask for a newer version only past its own
            if version < 1 or (version > ds.version and version > ds.latest_version):
                raise self._missing_version(ds, uri, version)
            return version
        if isinstance(version, str):
            try:
                return int(ds.tags.get_version(version))
            except (OSError, ValueError, KeyError, RuntimeError):
                tags = sorted(ds.tags.list())
                known = ", ".join(repr(t) for t in tags) if tags else "none"
                raise ProgrammingError(
                    f"table {self.name_of(uri)!r} has no tag {version!r} (tags: {known}); "
                    f"create it with ALTER TABLE {self.name_of(uri)} CREATE TAG '{version}'"
                ) from None
        if isinstance(version, dt.datetime):
            return self._version_at(ds, uri, version)
        raise ProgrammingError(
            f"a version must be a number, a tag name or a timestamp, not {type(version).__name__}"
        )

    def _version_at(self, ds: lance.LanceDataset, uri: str, when: dt.datetime) -> int:
        versions = kept_versions(ds)
        if when.tzinfo is not None:
            when = when.astimezone().replace(tzinfo=None)  # Lance's times are naive local times
        chosen = [v["version"] for v in versions if _naive_local(v["timestamp"]) <= when]
        if not chosen:
            first = min(versions, key=lambda v: v["version"])
            raise ProgrammingError(
                f"table {self.name_of(uri)!r} did not exist at {when.isoformat(sep=' ')}: its "
                f"oldest kept version is {first['version']} from "
                f"{_naive_local(first['timestamp']).isoformat(sep=' ')} (local time)"
            )
        return int(max(chosen))

    def _missing_version(self, ds: lance.LanceDataset, uri: str, number: int) -> Exception:
        kept = [v["version"] for v in kept_versions(ds)]
        name = self.name_of(uri)
        span = f"{kept[0]}..{kept[-1]}" if kept else "none"
        if kept and 1 <= number < kept[-1] and number not in kept:
            return OperationalError(
                f"version {number} of table {name!r} was removed by cleanup; the versions kept "
                f"are {span} (SHOW VERSIONS FROM {name})"
            )
        return ProgrammingError(
            f"table {name!r} has no version {number}; its versions are {span} (SHOW VERSIONS FROM {name})"
        )

    def _missing_table(self, uri: str, exc: BaseException | None) -> Exception:
        base, branch = split_branch(uri)
        if branch is not None and self.exists(base):
            return self.unknown_branch(base, branch)
        name = self.name_of(uri)
        if name != uri:
            try:
                names = self.table_names()
            except (OSError, OperationalError):
                names = []
            known = ", ".join(names) if names else "none"
            return ProgrammingError(
                f"unknown table {name!r}: there is no {name}{SUFFIX} under {self.root} (tables: {known})"
            )
        detail = f": {str(exc).splitlines()[0]}" if exc else ""
        return ProgrammingError(f"no Lance dataset at {uri!r}{detail}")


#: uri -> {version: Lance's entry for it (number, timestamp, manifest summary)}: a
#: version never changes, so each is read once per process (:func:`kept_versions`).
_VERSIONS: OrderedDict[str, dict[int, Version]] = OrderedDict()
_VERSIONS_LOCK = threading.Lock()
_VERSIONS_DATASETS = 256


def kept_versions(ds: lance.LanceDataset) -> list[Version]:
    """``ds.versions()``, oldest first: each kept version's number, timestamp and manifest
    summary, read from storage only for versions this process has not seen yet.

    Lance's ``versions()`` reads every manifest on each call, which grows with the
    history; ``version_refs()`` lists the numbers alone, so only new versions' manifests
    are read. A dataset dropped and made again at the same URI is told apart by the time
    of the newest version already known (its commit is not the new dataset's).
    """
    uri = _uri_of(ds)
    try:
        numbers = sorted(int(ref["version"]) for ref in ds.version_refs())
    except (OSError, ValueError, RuntimeError):
        return sorted(ds.versions(), key=lambda v: v["version"])
    with _VERSIONS_LOCK:
        known = dict(_VERSIONS.get(uri, {}))
    check = max((n for n in numbers if n in known), default=None)
    if check is not None:
        again = _version_entry(ds, check)
        if again is None or again["timestamp"] != known[check]["timestamp"]:
            known = {}
    missing = [n for n in numbers if n not in known]
    # One manifest read alone costs about twice its share of ``versions()``, which reads
    # them all concurrently: past half the history unseen, all are read at once.
    if 2 * len(missing) > len(numbers):
        known.update((int(v["version"]), v) for v in ds.versions())
    else:
        for number in missing:
            entry = _version_entry(ds, number)
            if entry is not None:  # else cleaned up since the listing
                known[number] = entry
    with _VERSIONS_LOCK:
        _VERSIONS[uri] = known
        _VERSIONS.move_to_end(uri)
        while len(_VERSIONS) > _VERSIONS_DATASETS:
            _VERSIONS.popitem(last=False)
    return [known[n] for n in numbers if n in known]


def _version_entry(ds: lance.LanceDataset, number: int) -> Version | None:
    """Lance's entry for one version (its manifest read unless it is ``ds``'s own)."""
    try:
        return (ds if number == ds.version else ds.checkout_version(number)).get_version()
    except (OSError, ValueError, RuntimeError):
        return None


def _manifest_kept(uri: str, version: int) -> bool:
    """Whether version ``version``'s manifest is still there: a file test for a local
    dataset (either naming scheme Lance uses), assumed true for object stores."""
    if "://" in uri:
        return True
    versions = os.path.join(uri, "_versions")
    return os.path.exists(os.path.join(versions, f"{2**64 - 1 - version}.manifest")) or os.path.exists(
        os.path.join(versions, f"{version}.manifest")
    )


def _manifest_stamp(uri: str, version: int) -> tuple[int, int] | None:
    """Inode and modification time of a local dataset's manifest of ``version`` (Lance
    never rewrites one in place), None when it is gone or the dataset is remote."""
    if "://" in uri:
        return None
    versions = os.path.join(uri, "_versions")
    for name in (f"{2**64 - 1 - version}.manifest", f"{version}.manifest"):
        try:
            st = os.stat(os.path.join(versions, name))
        except OSError:
            continue
        return (st.st_ino, st.st_mtime_ns)
    return None


def version_identity(ds: lance.LanceDataset) -> tuple[str, int, str]:
    """What tells one table version from every other, for caches that outlive a statement
    (a version's contents never change): its path and number, and the newest data file's
    name (a uuid), since a table dropped and made again at the same path starts at the same
    version numbers."""
    fragments = ds.get_fragments()
    files = fragments[-1].data_files() if fragments else []
    return (str(ds.uri), ds.version, f"{len(fragments)}:{files[0].path if files else ''}")


def _uri_of(ds: lance.LanceDataset) -> str:
    return str(ds.uri).rstrip("/")


def _naive_local(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone().replace(tzinfo=None)
    return value
