"""Posting the plan comment and finding the reviewed plan, against a fake GitHub on 127.0.0.1."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlparse

import pytest

from release_tooling import github_api, plan_review
from release_tooling import plan_comment as pc

REPO = "acme/orders-service"
BODY = f"{pc.MARKER}\n\n📝 **Terraform plan: 1 resource(s) change**\n"
# What GitHub reports as the author of what a workflow's GITHUB_TOKEN writes.
BOT = {"login": "github-actions[bot]", "type": "Bot"}
MALLORY = {"login": "mallory", "type": "User"}


class FakeGitHub:
    """Just enough of the issues/comments API; pages of PAGE_SIZE with Link headers."""

    PAGE_SIZE = 2

    def __init__(self) -> None:
        self.comments: list[dict] = []
        self.issues: list[dict] = []
        self.requests: list[tuple[str, str, dict | None, dict]] = []
        self.scripted: list[tuple[int, dict, dict]] = []  # (status, headers, body) served first
        self.deny_writes = False
        self.next_id = 1000
        # Actions API: runs of workflows, their artifacts, pull requests by merge commit.
        self.runs: list[dict] = []  # each with "workflow" (file name) besides GitHub's fields
        self.artifacts: dict[int, list[dict]] = {}  # run id -> artifacts
        self.commit_pulls: dict[str, list[dict]] = {}
        self.artifact_locations: dict[int, str] = {}  # artifact id -> where the zip redirects
        # Blob storage: served to anyone (a signed URL is its own credential), never with a token.
        self.blobs: dict[str, bytes] = {}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def _send(self, status: int, body, headers: dict | None = None) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(raw)

            def _dispatch(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                payload = json.loads(self.rfile.read(length)) if length else None
                fake.requests.append((self.command, self.path, payload, dict(self.headers)))
                if fake.scripted:
                    self._send(*_reorder(fake.scripted.pop(0)))
                    return
                if self.path in fake.blobs:
                    raw = fake.blobs[self.path]
                    self.send_response(200)
                    self.send_header("Content-Type", "application/zip")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                    return
                if self.headers.get("Authorization") != "Bearer test-token":
                    self._send(401, {"message": "Bad credentials"})
                    return
                parsed = urlparse(self.path)
                query = parse_qs(parsed.query)
                prefix = f"/repos/{REPO}/issues"
                path = parsed.path
                writing = self.command in ("POST", "PATCH")
                if writing and fake.deny_writes:
                    self._send(403, {"message": "Resource not accessible by integration"})
                elif self.command == "GET" and re.fullmatch(rf"{prefix}/\d+/comments", path):
                    self._page(fake.comments, query, path)
                elif self.command == "POST" and re.fullmatch(rf"{prefix}/\d+/comments", path):
                    fake.next_id += 1
                    comment = {
                        "id": fake.next_id,
                        "user": BOT,
                        "body": payload["body"],
                        "html_url": f"c/{fake.next_id}",
                    }
                    fake.comments.append(comment)
                    self._send(201, comment)
                elif self.command == "PATCH" and (
                    m := re.fullmatch(rf"{prefix}/comments/(\d+)", path)
                ):
                    comment = next(c for c in fake.comments if c["id"] == int(m.group(1)))
                    if (comment.get("user") or {}).get("type") != "Bot":  # only its author edits
                        self._send(403, {"message": "Resource not accessible by integration"})
                        return
                    comment["body"] = payload["body"]
                    self._send(200, comment)
                elif self.command == "GET" and path == prefix:
                    self._page(
                        [i for i in fake.issues if i["state"] == query["state"][0]], query, path
                    )
                elif self.command == "POST" and path == prefix:
                    fake.next_id += 1
                    issue = {
                        "number": fake.next_id,
                        "user": BOT,
                        "state": "open",
                        **payload,
                        "html_url": f"i/{fake.next_id}",
                    }
                    fake.issues.append(issue)
                    self._send(201, issue)
                elif self.command == "PATCH" and (m := re.fullmatch(rf"{prefix}/(\d+)", path)):
                    issue = next(i for i in fake.issues if i["number"] == int(m.group(1)))
                    issue.update(payload)
                    self._send(200, issue)
                elif self.command == "GET" and (
                    m := re.fullmatch(rf"/repos/{REPO}/commits/([0-9a-f]+)/pulls", path)
                ):
                    self._page(fake.commit_pulls.get(m.group(1), []), query, path)
                elif self.command == "GET" and (
                    m := re.fullmatch(rf"/repos/{REPO}/actions/workflows/([^/]+)/runs", path)
                ):
                    runs = [
                        r
                        for r in fake.runs
                        if r["workflow"] == m.group(1)
                        and r["head_sha"] == query["head_sha"][0]
                        and r["event"] == query["event"][0]
                        and r["conclusion"] == query["status"][0]
                    ]
                    self._page(runs, query, path, key="workflow_runs")
                elif self.command == "GET" and (
                    m := re.fullmatch(rf"/repos/{REPO}/actions/runs/(\d+)/artifacts", path)
                ):
                    named = [
                        a
                        for a in fake.artifacts.get(int(m.group(1)), [])
                        if a["name"] == query["name"][0]
                    ]
                    self._page(named, query, path, key="artifacts")
                elif self.command == "GET" and (
                    m := re.fullmatch(rf"/repos/{REPO}/actions/artifacts/(\d+)/zip", path)
                ):
                    location = fake.artifact_locations.get(int(m.group(1)))
                    if location is None:
                        self._send(404, {"message": "Not Found"})
                    else:
                        self._send(302, {}, {"Location": location})
                else:
                    self._send(404, {"message": "Not Found"})

            def _page(self, items: list, query: dict, path: str, key: str | None = None) -> None:
                page = int(query.get("page", ["1"])[0])
                size = FakeGitHub.PAGE_SIZE
                chunk = items[(page - 1) * size : page * size]
                headers = {}
                if page * size < len(items):
                    following = urlencode({**{k: v[0] for k, v in query.items()}, "page": page + 1})
                    headers["Link"] = (
                        f'<{fake.url}{path}?{following}>; rel="next", '
                        f'<{fake.url}{path}?page=99>; rel="last"'
                    )
                body = {"total_count": len(items), key: chunk} if key else chunk
                self._send(200, body, headers)

            do_GET = do_POST = do_PATCH = _dispatch

        return Handler


def _reorder(item):
    status, headers, body = item
    return status, body, headers


@pytest.fixture
def github():
    fake = FakeGitHub()
    fake.thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def client(github, sleeps):
    return github_api.GitHubClient(
        token="test-token",
        repository=REPO,
        api_url=github.url,
        sleep=sleeps.append,
        clock=lambda: 1000.0,
    )


def post(tmp_path, client, env=None, pr=7, body=BODY):
    path = tmp_path / "comment.md"
    path.write_text(body)
    args = pc.build_parser().parse_args(["post", "--pr", str(pr), "--body-file", str(path)])
    return pc.cmd_post(args, env or {}, client)


def test_creates_the_comment_when_none_exists(tmp_path, github, client, capsys):
    github.comments = [{"id": 1, "body": "LGTM"}]
    assert post(tmp_path, client) == 0
    assert [c["body"] for c in github.comments] == ["LGTM", BODY]
    assert "Plan comment created: c/1001" in capsys.readouterr().out
    method, path, payload, headers = github.requests[-1]
    assert (method, path) == ("POST", f"/repos/{REPO}/issues/7/comments")
    assert headers["Accept"] == "application/vnd.github+json"


def test_updates_own_comment_found_on_page_two(tmp_path, github, client):
    github.comments = [
        {"id": 1, "body": "first"},
        {"id": 2, "body": "second"},
        {"id": 3, "body": "third"},
        {"id": 4, "body": f"{pc.MARKER}\nold plan", "user": BOT},
        {"id": 5, "body": "after"},
    ]
    assert post(tmp_path, client) == 0
    assert len(github.comments) == 5, "no second comment: the old one is updated"
    assert github.comments[3]["body"] == BODY
    calls = [(m, p) for m, p, _, _ in github.requests]
    assert calls == [
        ("GET", f"/repos/{REPO}/issues/7/comments?per_page=100"),
        ("GET", f"/repos/{REPO}/issues/7/comments?per_page=100&page=2"),
        ("PATCH", f"/repos/{REPO}/issues/comments/4"),
    ]


def test_fork_403_writes_step_summary_and_exits_zero(tmp_path, github, client, capsys):
    github.deny_writes = True
    summary = tmp_path / "summary.md"
    summary.write_text("## Earlier step\n")
    assert post(tmp_path, client, env={"GITHUB_STEP_SUMMARY": str(summary)}) == 0
    assert summary.read_text() == "## Earlier step\n" + BODY
    out = capsys.readouterr().out
    assert out.startswith("::notice title=Plan comment not posted::")
    assert "HTTP 403" in out and "written to the job summary" in out


def test_fork_404_without_step_summary_still_exits_zero(tmp_path, github, client, capsys):
    github.scripted = [(404, {}, {"message": "Not Found"})]
    assert post(tmp_path, client) == 0
    assert "GITHUB_STEP_SUMMARY is not set" in capsys.readouterr().out


def test_502_then_success_retries_with_backoff(tmp_path, github, client, sleeps):
    github.scripted = [(502, {}, {"message": "Bad Gateway"}), (503, {}, {"message": "Unavailable"})]
    assert post(tmp_path, client) == 0
    assert sleeps == [1.0, 2.0]
    assert github.comments[-1]["body"] == BODY


def test_secondary_rate_limit_waits_retry_after(tmp_path, github, client, sleeps):
    limited = {"message": "You have exceeded a secondary rate limit"}
    github.scripted = [(403, {"Retry-After": "7"}, limited), (429, {}, limited)]
    assert post(tmp_path, client) == 0
    assert sleeps == [7.0, 60.0]


def test_primary_rate_limit_waits_until_reset_bounded(tmp_path, github, client, sleeps):
    headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1030"}
    github.scripted = [(403, headers, {"message": "API rate limit exceeded"})]
    assert post(tmp_path, client) == 0
    assert sleeps == [30.0]


def test_persistent_5xx_gives_up_after_bounded_attempts(tmp_path, github, client, sleeps, capsys):
    github.scripted = [(500, {}, {"message": "boom"})] * 5
    with pytest.raises(github_api.RetriesExhausted, match="after 5 attempts: HTTP 500"):
        post(tmp_path, client)
    assert sleeps == [1.0, 2.0, 4.0, 8.0]


def test_other_client_errors_fail_loudly(tmp_path, github, client):
    github.scripted = [(422, {}, {"message": "Validation Failed"})]
    with pytest.raises(github_api.GitHubError, match="HTTP 422: Validation Failed"):
        post(tmp_path, client)


def test_main_reads_env_and_posts(tmp_path, github, capsys):
    (tmp_path / "c.md").write_text(BODY)
    env = {
        "GITHUB_TOKEN": "test-token",
        "GITHUB_REPOSITORY": REPO,
        "GITHUB_API_URL": github.url + "/",
    }
    assert pc.main(["post", "--pr", "3", "--body-file", str(tmp_path / "c.md")], env=env) == 0
    assert github.requests[-1][1] == f"/repos/{REPO}/issues/3/comments"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "missing environment variable(s): GITHUB_TOKEN, GITHUB_REPOSITORY"),
        ({"GITHUB_TOKEN": "t"}, "missing environment variable(s): GITHUB_REPOSITORY"),
        ({"GITHUB_TOKEN": "t", "GITHUB_REPOSITORY": "no-slash"}, "must look like owner/name"),
        (
            {"GITHUB_TOKEN": "t", "GITHUB_REPOSITORY": REPO, "GITHUB_API_URL": "ftp://x"},
            "must be an https:// URL",
        ),
        (
            {"GITHUB_TOKEN": "t", "GITHUB_REPOSITORY": REPO, "GITHUB_API_URL": "http://gh.example"},
            "plain http",
        ),
        (
            {"GITHUB_TOKEN": "t", "GITHUB_REPOSITORY": REPO, "GITHUB_COMMENT_AUTHOR": "a b"},
            "GITHUB_COMMENT_AUTHOR must be comma-separated GitHub logins",
        ),
    ],
)
def test_missing_or_bad_env_is_a_clear_error(tmp_path, capsys, env, message):
    (tmp_path / "c.md").write_text(BODY)
    assert pc.main(["post", "--pr", "3", "--body-file", str(tmp_path / "c.md")], env=env) == 2
    assert message in capsys.readouterr().err


def test_body_without_marker_or_over_limit_is_refused(tmp_path, client, capsys):
    with pytest.raises(pc.InputError, match="lacks the marker"):
        post(tmp_path, client, body="hand written")
    with pytest.raises(pc.InputError, match="GitHub accepts fewer than 65,536"):
        post(tmp_path, client, body=pc.MARKER + "x" * 70_000)


def test_bad_pr_number_is_rejected(capsys):
    with pytest.raises(SystemExit):
        pc.build_parser().parse_args(["post", "--pr", "abc", "--body-file", "f"])
    assert "expected a pull request number" in capsys.readouterr().err


def test_link_header_parsing():
    header = '<https://x/a?page=1>; rel="prev", <https://x/a?page=3>; rel="next"'
    assert github_api.parse_next_link(header) == "https://x/a?page=3"
    assert github_api.parse_next_link('<https://x/a?page=1>; rel="last"') is None
    assert github_api.parse_next_link("") is None


# ------------------------------------------------------------------ drift issue


def issue(tmp_path, client, body=BODY):
    path = tmp_path / "drift.md"
    path.write_text(body)
    args = pc.build_parser().parse_args(["issue", "--body-file", str(path)])
    return pc.cmd_issue(args, {}, client)


def test_drift_issue_is_created_once_then_updated(tmp_path, github, client):
    github.issues = [
        {"number": 1, "state": "open", "body": "unrelated"},
        {"number": 2, "state": "open", "body": pc.MARKER, "pull_request": {"url": "x"}},
        {"number": 3, "state": "closed", "body": pc.MARKER, "user": BOT},
    ]
    assert issue(tmp_path, client) == 0
    created = github.issues[-1]
    assert created["title"] == "Terraform drift detected" and created["labels"] == ["drift"]
    assert issue(tmp_path, client, body=BODY + "\nnewer") == 0
    assert len(github.issues) == 4
    assert github.issues[-1]["body"].endswith("newer")


# ------------------------------------------------------------------ trust: author and origin


@pytest.mark.parametrize(
    "user",
    [MALLORY, {"login": "github-actions[bot]", "type": "User"}, None],
    ids=["another-user", "bot-login-but-not-a-bot", "no-user"],
)
def test_marker_planted_in_someone_elses_comment_is_left_alone(tmp_path, github, client, user):
    planted = {"id": 1, "body": f"{pc.MARKER}\nplease write the plan here", "user": user}
    github.comments = [dict(planted)]
    assert post(tmp_path, client) == 0
    assert github.comments[0] == planted, "the foreign comment is neither edited nor taken over"
    assert [(m, p) for m, p, _, _ in github.requests if m != "GET"] == [
        ("POST", f"/repos/{REPO}/issues/7/comments")
    ]
    assert github.comments[-1]["body"] == BODY


def test_foreign_marked_comment_cannot_suppress_the_plan(tmp_path, github, client, capsys):
    # Before: the PATCH of the planted comment got 403, was taken for a fork and exited 0.
    github.comments = [{"id": 1, "body": pc.MARKER, "user": MALLORY}]
    assert post(tmp_path, client) == 0
    assert "Plan comment created" in capsys.readouterr().out
    assert not any(m == "PATCH" for m, _, _, _ in github.requests)


def test_own_comment_after_a_planted_one_is_updated(tmp_path, github, client):
    github.comments = [
        {"id": 1, "body": pc.MARKER, "user": MALLORY},
        {"id": 2, "body": f"{pc.MARKER}\nold", "user": BOT},
    ]
    assert post(tmp_path, client) == 0
    assert github.comments[0]["body"] == pc.MARKER
    assert github.comments[1]["body"] == BODY


def test_comment_author_is_configurable(tmp_path, github):
    github.comments = [
        {"id": 1, "body": pc.MARKER, "user": BOT},
        {"id": 2, "body": pc.MARKER, "user": {"login": "plan-app[bot]", "type": "Bot"}},
    ]
    env = {
        "GITHUB_TOKEN": "test-token",
        "GITHUB_REPOSITORY": REPO,
        "GITHUB_API_URL": github.url,
        "GITHUB_COMMENT_AUTHOR": "plan-app[bot]",
    }
    (tmp_path / "c.md").write_text(BODY)
    assert pc.main(["post", "--pr", "7", "--body-file", str(tmp_path / "c.md")], env=env) == 0
    assert [c["body"] for c in github.comments] == [pc.MARKER, BODY]


def test_drift_marker_in_someone_elses_issue_is_left_alone(tmp_path, github, client):
    planted = {"number": 1, "state": "open", "body": pc.MARKER, "user": MALLORY}
    github.issues = [dict(planted)]
    assert issue(tmp_path, client) == 0
    assert github.issues[0] == planted
    assert len(github.issues) == 2 and github.issues[1]["body"] == BODY


@pytest.fixture
def elsewhere():
    """A second server: another origin (same host, other port) that must never see the token."""
    fake = FakeGitHub()
    fake.thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def test_redirect_to_another_origin_is_refused_without_sending_the_token(
    tmp_path, github, client, elsewhere
):
    target = f"{elsewhere.url}/repos/{REPO}/issues/7/comments?per_page=100"
    github.scripted = [(302, {"Location": target}, {"message": "Moved"})]
    with pytest.raises(github_api.ForeignOriginError, match="outside the GitHub API origin"):
        post(tmp_path, client)
    assert elsewhere.requests == []


def test_redirect_within_the_api_origin_keeps_the_token(tmp_path, github, client):
    target = f"{github.url}/repos/{REPO}/issues/7/comments?per_page=100"
    github.scripted = [(307, {"Location": target}, {"message": "Moved"})]
    assert post(tmp_path, client) == 0
    redirected = github.requests[1]
    assert redirected[0] == "GET" and redirected[3]["Authorization"] == "Bearer test-token"


def test_next_page_link_to_another_origin_is_refused(tmp_path, github, client, elsewhere):
    link = f'<{elsewhere.url}/repos/{REPO}/issues/7/comments?page=2>; rel="next"'
    github.scripted = [(200, {"Link": link}, [{"id": 1, "body": "hi", "user": MALLORY}])]
    with pytest.raises(github_api.ForeignOriginError, match="token is only sent there"):
        post(tmp_path, client)
    assert elsewhere.requests == []


@pytest.mark.parametrize(
    "url",
    ["http://api.github.com", "http://10.0.0.1:8080", "ftp://api.github.com", "https://u:p@h"],
)
def test_unsafe_api_urls_are_refused(url):
    with pytest.raises(github_api.ConfigError, match="GITHUB_API_URL"):
        github_api.GitHubClient(token="t", repository=REPO, api_url=url)


def test_https_and_loopback_http_api_urls_are_accepted():
    for url in ("https://github.example.com/api/v3/", "http://127.0.0.1:8080", "http://[::1]:1"):
        client = github_api.GitHubClient(token="t", repository=REPO, api_url=url)
        assert client.api_url == url.rstrip("/")


# ------------------------------------------- finding the reviewed plan of a commit (plan-review)

MERGE = "a" * 40
HEAD = "b" * 40
PLAN = {
    "format_version": "1.2",
    "resource_changes": [
        {
            "address": "aws_sns_topic.t",
            "change": {"actions": ["create"], "after": {"name": "t"}, "after_unknown": {}},
        }
    ],
}


def artifact_zip(doc: dict) -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(plan_review.FILE_NAME, json.dumps(doc))
    return buffer.getvalue()


def publish(github, blobs, run: dict, doc: dict, artifact_id: int = 77) -> None:
    """A successful run of pull-request.yml with the reviewed-plan artifact stored on `blobs`."""
    github.runs.append({"workflow": "pull-request.yml", "conclusion": "success", **run})
    github.artifacts[run["id"]] = [
        {"id": artifact_id, "name": "check-results", "expired": False},
        {"id": artifact_id + 1, "name": plan_review.ARTIFACT_NAME, "expired": False},
    ]
    path = f"/blob/{artifact_id + 1}.zip?sig=signed"
    github.artifact_locations[artifact_id + 1] = f"{blobs.url}{path}"
    blobs.blobs[path] = artifact_zip(doc)


def review(argv, client, plan=PLAN, tmp=None, env=None):
    plan_file = tmp / "plan.json"
    plan_file.write_text(json.dumps(plan))
    return plan_review.main([*argv, "--plan-json", str(plan_file)], env=env or {}, client=client)


def test_reviewed_plan_of_a_merged_pull_request_is_found_and_matches(
    tmp_path, github, client, elsewhere, capsys
):
    doc = plan_review.record(PLAN)
    github.commit_pulls[MERGE] = [
        {
            "number": 5,
            "merge_commit_sha": MERGE,
            "merged_at": "2026-01-01T00:00:00Z",
            "head": {"sha": HEAD},
        }
    ]
    publish(
        github,
        elsewhere,
        {
            "id": 10,
            "run_number": 3,
            "head_sha": HEAD,
            "event": "pull_request",
            "html_url": "runs/10",
        },
        doc,
    )
    # Older successful runs of the same head (listed on another page): the newest is reviewed.
    for run_id, artifact_id in ((9, 50), (8, 60)):
        publish(
            github,
            elsewhere,
            {"id": run_id, "run_number": run_id - 7, "head_sha": HEAD, "event": "pull_request"},
            plan_review.record({**PLAN, "resource_changes": []}),
            artifact_id=artifact_id,
        )
    github.runs.reverse()  # GitHub's order is not relied on
    provenance_out = tmp_path / "build" / "reviewed.json"
    argv = ["check", "--commit", MERGE, "--provenance-out", str(provenance_out)]
    assert review(argv, client, tmp=tmp_path) == 0
    out = capsys.readouterr().out
    assert f"reviewed plan {doc['digest']} from pull request #5" in out
    # What release-wait names at the head of the release's provenance.
    kept = json.loads(provenance_out.read_text())
    assert kept["digest"] == doc["digest"] and kept["matches"] is True
    assert kept["source"].startswith("pull request #5")
    assert "matches the reviewed plan" in out
    assert [r for r in github.requests if "/runs?" in r[1] and "page=2" in r[1]]
    # The blob store got the download without the token; the API origin got the token.
    (blob_request,) = elsewhere.requests
    assert blob_request[1].startswith("/blob/78.zip") and "Authorization" not in blob_request[3]
    api_zip = [r for r in github.requests if r[1].endswith("/actions/artifacts/78/zip")]
    assert api_zip and api_zip[0][3]["Authorization"] == "Bearer test-token"


def test_a_merge_queue_run_of_the_commit_is_preferred(tmp_path, github, client, elsewhere, capsys):
    queued = plan_review.record(PLAN)
    publish(
        github,
        elsewhere,
        {"id": 20, "run_number": 7, "head_sha": MERGE, "event": "merge_group"},
        queued,
    )
    assert review(["check", "--commit", MERGE], client, tmp=tmp_path) == 0
    assert "from merge queue: artifact 'reviewed-plan' of merge-queue run 20" in (
        capsys.readouterr().out
    )
    assert not [r for r in github.requests if "/pulls" in r[1]]


def test_a_plan_that_changed_since_review_stops_with_what_changed(
    tmp_path, github, client, elsewhere, capsys
):
    publish(
        github,
        elsewhere,
        {"id": 20, "run_number": 7, "head_sha": MERGE, "event": "merge_group"},
        plan_review.record(PLAN),
    )
    changed = json.loads(json.dumps(PLAN))
    changed["resource_changes"][0]["change"]["after"]["name"] = "other"
    env = {"GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")}
    assert review(["check", "--commit", MERGE], client, plan=changed, tmp=tmp_path, env=env) == 1
    out = capsys.readouterr().out
    assert "~ changed: aws_sns_topic.t: values differ at name" in out
    assert "::error title=The plan changed since review::" in out
    summary = (tmp_path / "summary.md").read_text()
    assert summary.startswith("### ❌ Reviewed plan\n\nFrom merge queue: artifact 'reviewed-plan'")
    assert "values differ at name" in summary
    # Unreviewed applies allowed (ALLOW_UNREVIEWED_APPLY): the same difference is a warning.
    argv = ["check", "--commit", MERGE, "--allow-unreviewed"]
    assert review(argv, client, plan=changed, tmp=tmp_path) == 0
    assert "::warning title=Unreviewed apply::The plan differs" in capsys.readouterr().out


def test_a_commit_without_a_reviewed_plan_is_refused_unless_allowed(
    tmp_path, github, client, capsys
):
    github.commit_pulls[MERGE] = [  # associated, but not merged as this commit
        {"number": 5, "merge_commit_sha": "c" * 40, "merged_at": None, "head": {"sha": MERGE}}
    ]
    assert review(["check", "--commit", MERGE], client, tmp=tmp_path) == 3
    out, err = capsys.readouterr()
    assert f"::error title=No reviewed plan::commit {MERGE} was not merged" in out
    assert "was not merged from a pull request" in err and "ALLOW_UNREVIEWED_APPLY" in err
    argv = ["check", "--commit", MERGE, "--allow-unreviewed"]
    assert review(argv, client, tmp=tmp_path) == 0
    assert "::warning title=Unreviewed apply::" in capsys.readouterr().out


def test_a_pull_request_whose_run_kept_no_plan_is_not_reviewed(tmp_path, github, client, capsys):
    github.commit_pulls[MERGE] = [
        {"number": 5, "merge_commit_sha": MERGE, "merged_at": "x", "head": {"sha": HEAD}}
    ]
    assert review(["check", "--commit", MERGE], client, tmp=tmp_path) == 3
    assert "has no successful pull_request run of pull-request.yml" in capsys.readouterr().err
    github.runs.append(
        {
            "workflow": "pull-request.yml",
            "conclusion": "success",
            "id": 4,
            "run_number": 1,
            "head_sha": HEAD,
            "event": "pull_request",
        }
    )
    github.artifacts[4] = [{"id": 8, "name": plan_review.ARTIFACT_NAME, "expired": True}]
    assert review(["check", "--commit", MERGE], client, tmp=tmp_path) == 3
    assert "no unexpired artifact 'reviewed-plan'" in capsys.readouterr().err


def test_an_altered_artifact_is_rejected(tmp_path, github, client, elsewhere, capsys):
    doc = plan_review.record(PLAN)
    doc["resources"]["aws_sns_topic.t"]["after"]["name"] = "tampered"
    publish(
        github,
        elsewhere,
        {"id": 20, "run_number": 7, "head_sha": MERGE, "event": "merge_group"},
        doc,
    )
    assert review(["check", "--commit", MERGE], client, tmp=tmp_path) == 2
    assert "does not match its content" in capsys.readouterr().err


def test_fetch_writes_the_record(tmp_path, github, client, elsewhere):
    doc = plan_review.record(PLAN)
    publish(
        github,
        elsewhere,
        {"id": 20, "run_number": 7, "head_sha": MERGE, "event": "merge_group"},
        doc,
    )
    argv = ["fetch", "--commit", MERGE, "--out", str(tmp_path / "reviewed")]
    assert plan_review.main(argv, env={}, client=client) == 0
    written = json.loads((tmp_path / "reviewed" / plan_review.FILE_NAME).read_text())
    assert written == doc


@pytest.mark.parametrize(
    "location",
    ["http://blob.example.net/x.zip", "ftp://127.0.0.1/x.zip", "https://u:p@blob.example.net/x"],
)
def test_artifact_redirects_to_unsafe_urls_are_refused(github, client, location):
    github.artifact_locations[5] = location
    with pytest.raises(github_api.ForeignOriginError, match="refusing"):
        client.download_artifact(5)


def test_an_artifact_over_the_size_limit_is_refused(github, client, elsewhere):
    github.artifact_locations[5] = f"{elsewhere.url}/blob/big"
    elsewhere.blobs["/blob/big"] = b"x" * 2048
    with pytest.raises(github_api.GitHubError, match="larger than 1024 bytes"):
        client.download_artifact(5, max_bytes=1024)
    assert client.download_artifact(5, max_bytes=4096) == b"x" * 2048
