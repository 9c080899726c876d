"""The browser demo in headless Chromium against the real server: the avatar plays, samples and the microphone drive it,
the guidance controls reach the session."""
from __future__ import annotations

from pathlib import Path

import json

import pytest
from aiohttp import web

from fada_stream.generator import bundled_checkpoint
from fada_stream.serve import ServerConfig, create_app

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--allow-loopback-in-peer-connection", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (CI installs it)")

PLAYING = """n => {
    const v = document.getElementById('avatar');
    return v.srcObject && !v.paused && v.currentTime > 0.3 && v.getVideoPlaybackQuality().totalVideoFrames > n;
}"""


@pytest.fixture
async def url():
    app = create_app(ServerConfig(device="cpu"))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/"
    await runner.cleanup()


@pytest.fixture
async def browser():
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        await b.close()


async def test_sample_mode_plays_the_avatar_and_a_bundled_sample(browser, url):
    page = await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(url)
    await page.click("#connect")
    await page.wait_for_function(PLAYING, arg=20, timeout=20_000)
    assert await page.eval_on_selector("#avatar", "v => v.muted") is False  # the avatar is heard
    assert await page.eval_on_selector("#sample", "s => s.options.length") > 0
    # The sliders start at the session's scales, which for the bundled student are its recorded defaults, shown exactly.
    own = json.loads((bundled_checkpoint("student") / "student.json").read_text())["config"]
    for key in ("s_ref", "s_audio"):
        assert float(await page.text_content(f"output[for={key}]")) == own[key]
        assert float(await page.eval_on_selector(f"#{key}", "e => e.value")) == own[key]
    await page.click("#play-sample")
    await page.wait_for_function("() => document.getElementById('log').textContent.includes('playback_started')",
                                 timeout=10_000)
    await page.wait_for_function("() => document.getElementById('stats').textContent.includes('real-time factor')",
                                 timeout=5_000)
    frames = await page.eval_on_selector("#avatar", "v => v.getVideoPlaybackQuality().totalVideoFrames")
    await page.wait_for_function(PLAYING, arg=frames + 10, timeout=5_000)  # still decoding new frames
    # The audio-boost slider reaches the session: the bundled student (2 steps) goes from 2 to 4 passes a window.
    assert await page.text_content("#stats dd:nth-of-type(5)") == "2 x 2"
    await page.eval_on_selector("#audio_boost", 'e => { e.value = "0.5"; e.dispatchEvent(new Event("change")); }')
    await page.wait_for_function("() => document.querySelector('#stats dd:nth-of-type(5)').textContent === '2 x 4'",
                                 timeout=5_000)
    await page.click("#disconnect")
    assert await page.text_content("#status") == "disconnected"
    assert errors == []


async def test_microphone_mode_mirrors_the_fake_microphone_with_playback_muted(browser, url):
    page = await browser.new_page()
    await page.goto(url)
    await page.check('input[name="source"][value="microphone"]')
    await page.click("#connect")
    await page.wait_for_function(PLAYING, arg=20, timeout=20_000)
    assert await page.eval_on_selector("#avatar", "v => v.muted") is True  # no echo of the mirrored voice
    # Chromium's fake microphone beeps: the session hears it and the avatar speaks it back.
    await page.wait_for_function("() => document.getElementById('log').textContent.includes('playback_started')",
                                 timeout=10_000)
