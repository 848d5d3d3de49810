"""The demo in a real browser: headless Debian chromium types text, uploads a voice prompt, clicks Synthesize
and gets playable speech back. Needs `chromium` and `chromium-driver` (scripts/setup.sh installs them)."""

import shutil
import socket
import urllib.request
from pathlib import Path

import pytest
import soundfile as sf

from demo.app import build_demo
from ns2_hf.alignment import NS2AlignerConfig, NS2AlignerModel
from ns2_hf.pipelines import build_untrained_pipeline

pytestmark = pytest.mark.slow

CHROMEDRIVER = "/usr/bin/chromedriver"
CHROME_ARGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--window-size=1280,1000")
EXAMPLE_PROMPT = Path(__file__).resolve().parents[1] / "demo" / "examples" / "kok_kumo.wav"
TEXT = "The birch canoe slid on the smooth planks."
#: Finds `<audio>` elements under an element, inside shadow roots too (the waveform player keeps its own there);
#: returns their `src`s.
AUDIO_SOURCES_JS = """
const sources = [];
const walk = (root) => root.querySelectorAll('*').forEach((element) => {
  if (element.tagName === 'AUDIO' && element.src) sources.push(element.src);
  if (element.shadowRoot) walk(element.shadowRoot);
});
walk(arguments[0]);
return sources;
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    chromium = shutil.which("chromium")
    if chromium is None or not Path(CHROMEDRIVER).is_file():
        pytest.fail(
            f"headless chromium is needed (found chromium={chromium}, chromedriver={Path(CHROMEDRIVER).is_file()}): "
            "run scripts/setup.sh, which installs Debian's chromium and chromium-driver"
        )
    options = Options()
    options.binary_location = chromium
    for argument in CHROME_ARGS:
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def demo_url():
    pipe = build_untrained_pipeline("tiny", seed=0)
    pipe.register_modules(aligner=NS2AlignerModel(NS2AlignerConfig.tiny(vocab_size=len(pipe.tokenizer))).eval())  # random too
    demo = build_demo(pipe, "ns2-tiny-random")
    demo.queue(default_concurrency_limit=1, max_size=16)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


def test_type_upload_click_and_hear_the_speech(browser, demo_url, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def wait_for(selector, root=None, timeout=120):
        """The first element matching `selector` once the page has rendered it (a loaded machine is slow)."""
        root = root or browser
        return WebDriverWait(browser, timeout).until(lambda driver: root.find_elements(By.CSS_SELECTOR, selector))[0]

    browser.get(demo_url)
    wait_for("textarea").send_keys(TEXT)
    wait_for("#prompt-audio input[type=file]").send_keys(str(EXAMPLE_PROMPT))
    WebDriverWait(browser, 60).until(
        lambda driver: driver.find_elements(By.CSS_SELECTOR, "#prompt-audio a[data-testid=download-link][href]")
    )
    wait_for("#synthesize-button").click()

    output = wait_for("#output-audio")
    sources = WebDriverWait(browser, 240).until(lambda driver: driver.execute_script(AUDIO_SOURCES_JS, output))
    assert sources[0].startswith(("blob:", "http"))
    assert "synthesis" in browser.find_element(By.CSS_SELECTOR, "#status").text

    # the file behind the player is the speech: 16 kHz, a plausible length
    download = wait_for("a[data-testid=download-link]", root=output).get_attribute("href")
    with urllib.request.urlopen(download, timeout=30) as response:
        (tmp_path / "speech.wav").write_bytes(response.read())
    audio, sampling_rate = sf.read(tmp_path / "speech.wav")
    assert sampling_rate == 16000 and 0.1 < len(audio) / sampling_rate < 60


def test_conversion_enhancement_and_singing_tabs(browser, demo_url, tmp_path):
    """Each mode's tab: upload its inputs, click its button, get playable audio and a status line."""
    import pretty_midi
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def wait_for(selector, timeout=120):
        return WebDriverWait(browser, timeout).until(lambda driver: driver.find_elements(By.CSS_SELECTOR, selector))[0]

    def open_tab(title):
        xpath = f"//button[@role='tab' and contains(., '{title}')]"
        WebDriverWait(browser, 60).until(lambda driver: driver.find_elements(By.XPATH, xpath))[0].click()

    def upload(elem_id, path):
        wait_for(f"#{elem_id} input[type=file]").send_keys(str(path))

    def run_and_hear(button_id, output_id, status_id, word):
        wait_for(f"#{button_id}").click()
        output = wait_for(f"#{output_id}")
        sources = WebDriverWait(browser, 240).until(lambda driver: driver.execute_script(AUDIO_SOURCES_JS, output))
        assert sources[0].startswith(("blob:", "http"))
        assert word in browser.find_element(By.CSS_SELECTOR, f"#{status_id}").text

    midi = pretty_midi.PrettyMIDI(initial_tempo=120)
    voice = pretty_midi.Instrument(program=0)
    voice.notes += [pretty_midi.Note(velocity=90, pitch=pitch, start=0.5 * i, end=0.5 * i + 0.4) for i, pitch in enumerate([60, 64, 67])]
    midi.instruments.append(voice)
    midi.write(str(tmp_path / "song.mid"))

    browser.get(demo_url)
    open_tab("Voice conversion")
    upload("vc-source", EXAMPLE_PROMPT)
    upload("vc-prompt", EXAMPLE_PROMPT.with_name("flite_slt.wav"))
    wait_for("#vc-transcript textarea").send_keys(TEXT)
    run_and_hear("vc-button", "vc-output", "vc-status", "conversion")

    open_tab("Speech enhancement")
    upload("se-source", EXAMPLE_PROMPT)
    upload("se-prompt", EXAMPLE_PROMPT)
    wait_for("#se-transcript textarea").send_keys(TEXT)
    run_and_hear("se-button", "se-output", "se-status", "enhancement")

    open_tab("Singing")
    upload("sing-score", tmp_path / "song.mid")
    wait_for("#sing-lyrics textarea").send_keys("sing a song")
    upload("sing-prompt", EXAMPLE_PROMPT)
    run_and_hear("sing-button", "sing-output", "sing-status", "singing")
