"""The web app's defaults: the CLI's default profile first, profiles that cannot load here shown
unavailable with the reason (and refused), the local llama.cpp server as the default LLM, and
(slow, browser) an uploaded clip answered offline with verified evidence as citations."""

from __future__ import annotations

import shutil
import socket
import threading
import time

import pytest
from fastapi.testclient import TestClient

from vidchat.apps.webapp import AppConfig, create_app
from vidchat.pipeline.profiles import DEFAULT_PROFILE


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    app = create_app(AppConfig(work_dir=tmp_path_factory.mktemp("web")))
    with TestClient(app, base_url="http://127.0.0.1") as c:  # a Host the app allows
        yield c


def test_defaults_are_the_clis(client):
    cfg = client.get("/api/config").json()
    assert DEFAULT_PROFILE == "offline"
    assert cfg["profiles"][0] == cfg["default_profile"] == DEFAULT_PROFILE
    assert cfg["llms"][0] == "local"  # the local llama.cpp server
    assert cfg["profile_status"]["offline"] == {"available": True, "reason": ""}


def test_a_profile_that_cannot_load_here_is_unavailable_with_its_reason(client):
    cfg = client.get("/api/config").json()
    full = cfg["profile_status"]["full"]
    # Its models come from a hub or a library download: not here, and the page says so.
    assert full["available"] is False and "download" in full["reason"]
    r = client.put("/api/upload?name=a.mp4&profile=full", content=b"not read")
    assert r.status_code == 400
    assert r.json()["error"].startswith("profile 'full' is unavailable here: ")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_browser_defaults_textualize_an_upload_offline_and_cite_verified_evidence(tmp_path):
    """With nothing chosen: the offline profile, the local server's default model (Qwen 1.5B),
    a spoken date asked about, the answer shown first and the evidence as a citation."""
    import uvicorn
    from playwright.sync_api import sync_playwright

    from vidchat.testing.speech import make_speech_video

    clip = make_speech_video(
        tmp_path / "exam.mp4",
        "The final exam will take place on the fourteenth of March",
        start_s=1.0,
        duration_s=8.0,
    )
    port = _free_port()
    app = create_app(AppConfig(work_dir=tmp_path / "web"))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=shutil.which("chromium"),
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                      "--disable-component-update", "--no-first-run"],
            )  # fmt: skip
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{port}/", wait_until="domcontentloaded")
            page.wait_for_selector("#profile option", state="attached")
            assert page.input_value("#profile") == "offline"
            assert page.input_value("#llm") == "local"
            page.set_input_files("#file", str(clip.path))
            page.wait_for_selector("body[data-state=ready]", timeout=600_000)
            page.fill("#question", "On what date will the final exam take place?")
            page.click("#send")
            page.wait_for_selector(".msg.bot.done", timeout=900_000)
            bot = page.inner_text(".msg.bot.done")
            assert "march" in bot.lower() and ("14" in bot or "fourteenth" in bot.lower())
            # The verified evidence is a clickable citation of the speech line.
            cite = page.locator(".msg.bot.done .evidence li").first
            assert "speech" in cite.inner_text() and "March" in cite.inner_text()
            link = cite.locator("a.cite").first
            assert cite.locator("a.cite").count() >= 1
            # Clicking it seeks the player to the cited time.
            target = float(link.get_attribute("data-t") or -1)
            assert target >= 0
            link.click()
            page.wait_for_function(
                f"Math.abs(document.getElementById('player').currentTime - {target}) < 0.3"
            )
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
