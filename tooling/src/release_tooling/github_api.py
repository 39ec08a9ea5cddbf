"""Minimal GitHub REST client for CI scripts (standard library only).

Why not PyGithub/requests: the workflows run these scripts before any dependency
install, and the API surface needed (issue comments, issues) is tiny.

The client retries what GitHub documents as transient: 5xx answers, network
errors, and secondary rate limits (403/429 carrying ``retry-after`` or an
exhausted ``x-ratelimit-remaining``). Waits are bounded and the sleep function
is injectable so tests run instantly.

Trust rules (anyone who can comment can copy the hidden marker into their own comment):
- The sticky comment and the drift issue are only ever updated when they were written by one of
  ``author_logins``: by default ``github-actions[bot]`` (user type ``Bot``), the identity a
  workflow's GITHUB_TOKEN writes as. GET /user is not available to that token, so the identity is
  configured, not discovered: set GITHUB_COMMENT_AUTHOR (comma-separated logins) when the job
  posts with another token, e.g. ``my-app[bot]`` for a GitHub App token or a machine user's login.
  A marked comment by anyone else is ignored and a new comment is created.
- The token is only sent to the configured API origin (scheme, host and port), over HTTPS; plain
  HTTP is accepted for loopback addresses only (tests, local fakes). Redirects and ``Link:
  rel="next"`` URLs to any other origin are refused, so the token never leaves that origin.
- One exception to following redirects: downloading an artifact. GitHub answers "Download an
  artifact" (GET /repos/{owner}/{repo}/actions/artifacts/{artifact_id}/zip) with a redirect whose
  Location is a short-lived (1 minute) signed URL on blob storage, another origin (GitHub REST
  docs, https://docs.github.com/rest/actions/artifacts#download-an-artifact). The client does not
  follow that redirect with the token: it reads the Location and fetches it with a separate
  request that carries no Authorization header (https only, http for loopback hosts in tests),
  bounded in size.
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

DEFAULT_API_URL = "https://api.github.com"
# The login a workflow's GITHUB_TOKEN writes comments and issues as.
DEFAULT_AUTHOR = "github-actions[bot]"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
REPOSITORY_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
API_VERSION = "2022-11-28"
USER_AGENT = "plan-comment-script"


class GitHubError(Exception):
    """A GitHub API call failed for a reason retrying will not fix."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class PermissionDenied(GitHubError):
    """The token may not perform the call (403/404), e.g. a fork's read-only token."""


class RetriesExhausted(GitHubError):
    """Transient failures (5xx, rate limits, network) outlasted the retry budget."""


class ConfigError(Exception):
    """Required environment is missing or malformed."""


class ForeignOriginError(GitHubError):
    """A redirect or pagination link pointed away from the API origin; the token was not sent."""


def origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    default_port = {"https": 443, "http": 80}.get(parts.scheme)
    try:
        port = parts.port or default_port
    except ValueError:
        port = None
    return parts.scheme, (parts.hostname or "").lower(), port


def check_api_url(api_url: str) -> str:
    """Return ``api_url`` without a trailing slash, or raise ConfigError if it is not safe."""
    url = api_url.rstrip("/")
    scheme, host, _ = origin(url)
    parts = urllib.parse.urlsplit(url)
    if scheme not in ("https", "http") or not host or parts.query or parts.fragment:
        raise ConfigError(f"GITHUB_API_URL must be an https:// URL, got {api_url!r}")
    if scheme == "http" and host not in LOOPBACK_HOSTS:
        raise ConfigError(
            f"GITHUB_API_URL {api_url!r} is plain http: the token would travel unencrypted; "
            "use https:// (http:// is accepted for 127.0.0.1/localhost only)"
        )
    if parts.username or parts.password:
        raise ConfigError("GITHUB_API_URL must not carry credentials")
    return url


def parse_authors(value: str | None) -> frozenset[str]:
    logins = frozenset(x.strip() for x in (value or DEFAULT_AUTHOR).split(",") if x.strip())
    if not logins or any(
        not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]*(\[bot\])?", x) for x in logins
    ):
        raise ConfigError(
            f"GITHUB_COMMENT_AUTHOR must be comma-separated GitHub logins such as "
            f"{DEFAULT_AUTHOR} or my-app[bot], got {value!r}"
        )
    return logins


class _SameOriginRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects within the API origin only; the Authorization header is never copied
    by urllib (it is an unredirected header) and is re-added only for the same origin."""

    def __init__(self, api_origin: tuple[str, str, int | None], token: str) -> None:
        self.api_origin = api_origin
        self.token = token

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001
        if origin(newurl) != self.api_origin:
            raise ForeignOriginError(
                f"{req.get_method()} {req.full_url} redirected (HTTP {code}) to {newurl}, "
                "outside the GitHub API origin; not following it with the token",
                code,
            )
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None:
            new.add_unredirected_header("Authorization", f"Bearer {self.token}")
        return new


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Do not follow redirects: the caller reads Location itself (artifact downloads)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001, ARG002
        return None


class _TokenFreeRedirects(urllib.request.HTTPRedirectHandler):
    """Blob downloads carry no token; their redirects may go anywhere safe (https or loopback)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001
        check_download_url(newurl)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def check_download_url(url: str) -> str:
    """A URL an artifact may be fetched from without the token: https (http on loopback only),
    without credentials in it."""
    parts = urllib.parse.urlsplit(url)
    scheme, host, _ = origin(url)
    if (
        not host
        or scheme not in ("https", "http")
        or (scheme == "http" and host not in LOOPBACK_HOSTS)
    ):
        raise ForeignOriginError(f"refusing to download an artifact from {url!r}: not https")
    if parts.username or parts.password:
        raise ForeignOriginError("refusing an artifact download URL that carries credentials")
    return url


REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: Any

    def next_link(self) -> str | None:
        return parse_next_link(self.headers.get("link", ""))


def parse_next_link(link_header: str) -> str | None:
    """Return the rel="next" URL of an RFC 8288 Link header, if any."""
    for part in link_header.split(","):
        match = re.match(r"\s*<([^>]+)>\s*;(.*)", part)
        if match and re.search(r'\brel="?next"?', match.group(2)):
            return match.group(1)
    return None


@dataclass
class GitHubClient:
    token: str
    repository: str
    api_url: str = DEFAULT_API_URL
    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 60.0
    timeout: float = 30.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time
    log: Callable[[str], None] = field(default=lambda msg: print(msg, flush=True))
    author_logins: frozenset[str] = frozenset({DEFAULT_AUTHOR})

    def __post_init__(self) -> None:
        self.api_url = check_api_url(self.api_url)
        self._origin = origin(self.api_url)
        self._opener = urllib.request.build_opener(_SameOriginRedirects(self._origin, self.token))
        self._no_redirect_opener = urllib.request.build_opener(_NoRedirects())
        self._download_opener = urllib.request.build_opener(_TokenFreeRedirects())

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **kwargs: Any) -> GitHubClient:
        env = dict(os.environ if env is None else env)
        missing = [name for name in ("GITHUB_TOKEN", "GITHUB_REPOSITORY") if not env.get(name)]
        if missing:
            raise ConfigError(
                f"missing environment variable(s): {', '.join(missing)}. In a workflow pass the "
                "job token as GITHUB_TOKEN (env: GITHUB_TOKEN set from github.token); "
                "GITHUB_REPOSITORY is set by the runner (locally export it as owner/name)."
            )
        repository = env["GITHUB_REPOSITORY"]
        if not REPOSITORY_RE.match(repository):
            raise ConfigError(f"GITHUB_REPOSITORY must look like owner/name, got {repository!r}")
        api_url = check_api_url(env.get("GITHUB_API_URL") or DEFAULT_API_URL)
        kwargs.setdefault("author_logins", parse_authors(env.get("GITHUB_COMMENT_AUTHOR")))
        return cls(token=env["GITHUB_TOKEN"], repository=repository, api_url=api_url, **kwargs)

    def is_own(self, item: dict[str, Any]) -> bool:
        """Whether a comment/issue was written by the identity this client posts as."""
        user = item.get("user") or {}
        login = user.get("login")
        if login not in self.author_logins:
            return False
        # Bot logins end in [bot] and cannot be registered by people; require the type too.
        return user.get("type") == "Bot" if login.endswith("[bot]") else True

    # -- low level -------------------------------------------------------------------

    def url(self, path: str, query: dict[str, Any] | None = None) -> str:
        url = f"{self.api_url}/repos/{self.repository}/{path.lstrip('/')}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        return url

    def request(
        self, method: str, url: str, payload: Any = None, follow_redirects: bool = True
    ) -> Response:
        """One API call, retried when transient. ``follow_redirects=False`` returns a redirect
        (3xx) as a Response with its headers instead of following it."""
        data = None if payload is None else json.dumps(payload).encode()
        opener = self._opener if follow_redirects else self._no_redirect_opener
        if origin(url) != self._origin:
            raise ForeignOriginError(
                f"refusing {method} {url}: it is outside the GitHub API origin {self.api_url}, "
                "and the token is only sent there"
            )
        for attempt in range(1, self.max_attempts + 1):
            # The URL's origin is api_url's (checked above; https, or http on loopback).
            req = urllib.request.Request(url, data=data, method=method)  # noqa: S310
            req.add_header("Accept", "application/vnd.github+json")
            # Unredirected: urllib does not copy it onto a redirected request.
            req.add_unredirected_header("Authorization", f"Bearer {self.token}")
            req.add_header("X-GitHub-Api-Version", API_VERSION)
            req.add_header("User-Agent", USER_AGENT)
            if data is not None:
                req.add_header("Content-Type", "application/json")
            try:
                with opener.open(req, timeout=self.timeout) as resp:
                    return Response(resp.status, _lower(resp.headers), _decode(resp.read()))
            except urllib.error.HTTPError as err:
                headers = _lower(err.headers)
                if not follow_redirects and err.code in REDIRECT_STATUSES:
                    err.close()
                    return Response(err.code, headers, None)
                body = _decode(err.read())
                delay = self._retry_delay(err.code, headers, body, attempt)
                if delay is None:
                    raise self._final_error(method, url, err.code, body) from None
                reason = f"HTTP {err.code}"
            except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
                delay = self._backoff(attempt)
                reason = f"network error ({getattr(err, 'reason', err)})"
            if attempt == self.max_attempts:
                raise RetriesExhausted(
                    f"{method} {url} still failing after {self.max_attempts} attempts: {reason}"
                )
            self.log(
                f"GitHub API {method} {url}: {reason}; "
                f"retry {attempt}/{self.max_attempts - 1} in {delay:.0f}s"
            )
            self.sleep(delay)
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int) -> float:
        return min(self.max_delay, self.base_delay * 2 ** (attempt - 1))

    def _retry_delay(
        self, status: int, headers: dict[str, str], body: Any, attempt: int
    ) -> float | None:
        """Seconds to wait before retrying, or None when the error is final."""
        if status >= 500:
            return self._backoff(attempt)
        if status in (403, 429):
            retry_after = headers.get("retry-after")
            if retry_after and retry_after.strip().isdigit():
                return min(self.max_delay, max(1.0, float(retry_after)))
            if headers.get("x-ratelimit-remaining") == "0":
                reset = headers.get("x-ratelimit-reset", "")
                wait = float(reset) - self.clock() if reset.isdigit() else self.max_delay
                return min(self.max_delay, max(1.0, wait))
            if status == 429 or "rate limit" in _message(body).lower():
                # GitHub: without headers, wait at least a minute (capped by max_delay).
                return self.max_delay
        return None

    def _final_error(self, method: str, url: str, status: int, body: Any) -> GitHubError:
        message = f"{method} {url} failed: HTTP {status}: {_message(body) or 'no message'}"
        if status in (403, 404):
            return PermissionDenied(message, status)
        return GitHubError(message, status)

    def paginate(self, url: str, max_pages: int = 50, key: str | None = None) -> Iterator[Any]:
        """Yield items of a list endpoint, following Link: rel="next". ``key`` names the list in
        endpoints that wrap it in an object (workflow runs, artifacts)."""
        pages = 0
        next_url: str | None = url
        while next_url:
            pages += 1
            if pages > max_pages:
                raise GitHubError(f"more than {max_pages} pages at {url}; refusing to scan further")
            resp = self.request("GET", next_url)
            if key is not None and isinstance(resp.body, dict):
                resp = Response(resp.status, resp.headers, resp.body.get(key))
            if not isinstance(resp.body, list):
                raise GitHubError(
                    f"GET {next_url} returned {type(resp.body).__name__}, expected a list"
                )
            yield from resp.body
            next_url = resp.next_link()

    # -- issue comments (pull requests are issues for comments) -----------------------

    def find_comment(self, number: int, marker: str) -> dict[str, Any] | None:
        for comment in self.paginate(self.url(f"issues/{number}/comments", {"per_page": 100})):
            if marker in (comment.get("body") or "") and self.is_own(comment):
                return comment
        return None

    def upsert_comment(self, number: int, marker: str, body: str) -> tuple[str, dict[str, Any]]:
        """Update the comment carrying ``marker`` or create one. Returns (action, comment)."""
        existing = self.find_comment(number, marker)
        if existing:
            resp = self.request(
                "PATCH", self.url(f"issues/comments/{existing['id']}"), {"body": body}
            )
            return "updated", resp.body
        resp = self.request("POST", self.url(f"issues/{number}/comments"), {"body": body})
        return "created", resp.body

    # -- issues ------------------------------------------------------------------------

    def find_open_issue(self, marker: str) -> dict[str, Any] | None:
        query = {"state": "open", "per_page": 100}
        for issue in self.paginate(self.url("issues", query)):
            if "pull_request" in issue:
                continue
            if marker in (issue.get("body") or "") and self.is_own(issue):
                return issue
        return None

    def upsert_issue(
        self, marker: str, title: str, body: str, labels: list[str]
    ) -> tuple[str, dict[str, Any]]:
        existing = self.find_open_issue(marker)
        if existing:
            resp = self.request(
                "PATCH", self.url(f"issues/{existing['number']}"), {"title": title, "body": body}
            )
            return "updated", resp.body
        # Labels are dropped silently by GitHub when the token may not set them; the
        # marker, not the label, is what finds the issue next time.
        resp = self.request(
            "POST", self.url("issues"), {"title": title, "body": body, "labels": labels}
        )
        return "created", resp.body

    # -- commits, workflow runs and artifacts (deploy: finding the reviewed plan) -------

    def commit_pulls(self, sha: str) -> list[dict[str, Any]]:
        """Pull requests associated with a commit (GitHub REST "List pull requests associated
        with a commit", GET /repos/{owner}/{repo}/commits/{commit_sha}/pulls): for a commit on
        the default branch, the merged pull requests that introduced it."""
        return list(self.paginate(self.url(f"commits/{sha}/pulls", {"per_page": 100})))

    def workflow_runs(
        self, workflow: str, head_sha: str, event: str, status: str = "success"
    ) -> list[dict[str, Any]]:
        """Runs of one workflow (its file name) for a commit and event, newest first (GitHub
        REST "List workflow runs for a workflow", GET .../actions/workflows/{workflow_id}/runs
        with head_sha, event and status filters)."""
        query = {"head_sha": head_sha, "event": event, "status": status, "per_page": 100}
        url = self.url(f"actions/workflows/{urllib.parse.quote(workflow, safe='')}/runs", query)
        runs = list(self.paginate(url, key="workflow_runs"))
        return sorted(runs, key=lambda r: (r.get("run_number", 0), r.get("run_attempt", 0)))[::-1]

    def run_artifacts(self, run_id: int, name: str) -> list[dict[str, Any]]:
        """A run's artifacts called ``name`` (GitHub REST "List workflow run artifacts",
        GET .../actions/runs/{run_id}/artifacts?name=NAME)."""
        url = self.url(f"actions/runs/{int(run_id)}/artifacts", {"name": name, "per_page": 100})
        return [a for a in self.paginate(url, key="artifacts") if a.get("name") == name]

    def download_artifact(self, artifact_id: int, max_bytes: int = 10 * 1024 * 1024) -> bytes:
        """The zip of an artifact. The API answers with a redirect to a signed blob-storage URL
        on another origin (valid one minute); that URL is fetched without the token."""
        url = self.url(f"actions/artifacts/{int(artifact_id)}/zip")
        last: Exception | None = None
        for attempt in range(1, self.max_attempts + 1):
            resp = self.request("GET", url, follow_redirects=False)
            location = resp.headers.get("location")
            if resp.status not in REDIRECT_STATUSES or not location:
                raise GitHubError(
                    f"GET {url} answered HTTP {resp.status} without a download location"
                )
            blob = check_download_url(urllib.parse.urljoin(url, location))
            # No Authorization header: the signed URL is the credential. Its origin is checked
            # above (https, or http on loopback for tests).
            req = urllib.request.Request(blob, headers={"User-Agent": USER_AGENT})  # noqa: S310
            try:
                with self._download_opener.open(req, timeout=self.timeout) as blob_resp:
                    data = blob_resp.read(max_bytes + 1)
            except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
                status = getattr(err, "code", None)
                if status is not None and status < 500:
                    raise GitHubError(
                        f"downloading artifact {artifact_id} failed: HTTP {status}", status
                    ) from None
                last = err
                if attempt < self.max_attempts:
                    self.log(f"artifact {artifact_id} download failed ({err}); retrying")
                    self.sleep(self._backoff(attempt))
                continue
            if len(data) > max_bytes:
                raise GitHubError(
                    f"artifact {artifact_id} is larger than {max_bytes} bytes; refusing it"
                )
            return data
        raise RetriesExhausted(
            f"artifact {artifact_id} download still failing after {self.max_attempts} "
            f"attempts: {last}"
        )


def _lower(headers: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in (headers.items() if headers else [])}


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def _message(body: Any) -> str:
    if isinstance(body, dict):
        return str(body.get("message", ""))
    return str(body or "")[:300]
