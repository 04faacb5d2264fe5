"""The web page of ban serve in a real browser: headless Chromium through chromium-driver and
python3-selenium (Debian's). It loads the page, uploads an easy-VQA test image, asks, and checks
the answer shown (ban ask's), the top 5 bars, each glimpse's attention picture (drawn, not blank,
labelled with its entropy) and its words; then the same on a model of box features, an image id
picked from the store. Every resource the page loaded came from the server. The screenshots are
build/serve_page.png and build/serve_page_store.png. Without Chromium, its driver or selenium the
test is skipped, saying so."""
import json
import os
import shutil

import pytest

from conftest import BUILD, run_ban
from test_easyvqa import dataset_dir
from test_serve import MODEL, Server, ask, post

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1200,860"]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("python3-selenium is not installed: the browser test is skipped")
    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not os.access(driver_path, os.X_OK) or not (shutil.which("chromium") or shutil.which("chromium-browser")):
        pytest.skip("chromium or chromium-driver is not installed: the browser test is skipped")
    options = webdriver.ChromeOptions()
    for flag in CHROMIUM_FLAGS + ["--user-data-dir=%s" % tmp_path_factory.mktemp("chromium-profile")]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def wait(driver, condition, what, timeout=60):
    from selenium.webdriver.support.ui import WebDriverWait
    try:
        WebDriverWait(driver, timeout).until(lambda d: condition(d))
    except Exception:
        pytest.fail("%s did not happen; the page says: %s" % (what, driver.find_element("id", "status").text))


# how many distinct colours a canvas holds (a blank one: 1), read by the page's own JavaScript
DISTINCT_COLOURS = """
const c = arguments[0], d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data, seen = new Set();
for (let i = 0; i < d.length; i += 4) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
return seen.size;"""


def ask_on_the_page(driver, port, question, pick):
    driver.get("http://127.0.0.1:%d/" % port)
    wait(driver, lambda d: d.find_element("id", "ask").is_enabled(), "the page reading /v1/model")
    pick()
    q = driver.find_element("id", "question")
    q.clear()
    q.send_keys(question)
    driver.find_element("id", "ask").click()
    wait(driver, lambda d: d.find_element("id", "result").get_attribute("data-state") in ("done", "error"),
         "the answer")
    assert driver.find_element("id", "result").get_attribute("data-state") == "done", \
        driver.find_element("id", "status").text


def check_page(driver, port, api, glimpses):
    """What the page shows against what the API answered to the same request."""
    assert driver.find_element("id", "answer").text == api["answer"]
    rows = driver.find_elements("css selector", "#tops .top")
    assert [r.text.split("\n")[0] for r in rows] == [t["answer"] for t in api["top_k"]]
    canvases = driver.find_elements("css selector", "canvas.attention")
    assert len(canvases) == glimpses
    for c in canvases:
        assert int(c.get_attribute("width")) > 0 and int(c.get_attribute("height")) > 0
        assert driver.execute_script(DISTINCT_COLOURS, c) > 8  # drawn: the picture and its shading
    captions = [f.text for f in driver.find_elements("css selector", "#glimpses figcaption")]
    assert captions == ["glimpse %d · entropy %.3f nats" % (g + 1, e) for g, e in enumerate(api["entropy"])]
    words = driver.find_elements("css selector", "#glimpses figure:first-child .word")
    assert [w.text for w in words][:len(api["words"])] == [w["word"] for w in api["words"]]
    origin = "http://127.0.0.1:%d/" % port
    loaded = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert loaded and all(u.startswith(origin) for u in loaded), loaded


def test_the_page_in_chromium(browser, tmp_path):
    image = os.path.realpath(os.path.join(dataset_dir(), "test", "images", "3.png"))  # ChromeDriver wants no ..
    question = "what shape is in the image?"
    answer, _ = ask(image, question)
    server = Server(tmp_path, MODEL)
    try:
        ask_on_the_page(browser, server.port, question,
                        lambda: browser.find_element("id", "file").send_keys(image))
        import base64
        status, _, api = post(server.port, "/v1/answer", {"question": question, "attention": True, "top_k": 5,
                                                          "image": base64.b64encode(open(image, "rb").read()).decode()})
        assert status == 200 and api["answer"] == answer
        check_page(browser, server.port, api, 2)
        os.makedirs(BUILD, exist_ok=True)
        browser.save_screenshot(os.path.join(BUILD, "serve_page.png"))
    finally:
        assert server.stop() == 0, server.stderr()


def test_the_page_on_a_store_model(browser, exported, tmp_path):
    from vqa_files import GOLDEN_IDS, golden_store
    store = golden_store(tmp_path)
    question = "What color is the man's shirt?"
    server = Server(tmp_path, exported["g2"], "--features", store)
    try:
        image_id = str(GOLDEN_IDS[0])

        def pick():
            field = browser.find_element("id", "image-id")
            assert json.loads(browser.find_element("id", "ids").get_attribute("childElementCount")) == 6
            field.clear()
            field.send_keys(image_id)

        ask_on_the_page(browser, server.port, question, pick)
        status, _, api = post(server.port, "/v1/answer", {"question": question, "attention": True, "top_k": 5,
                                                          "image_id": image_id})
        assert status == 200
        check_page(browser, server.port, api, 2)
        words = browser.find_elements("css selector", "#glimpses figure:first-child .word")
        assert words[-1].text == "padding"  # the reference pads every question to 14 positions
        browser.save_screenshot(os.path.join(BUILD, "serve_page_store.png"))
    finally:
        assert server.stop() == 0, server.stderr()
