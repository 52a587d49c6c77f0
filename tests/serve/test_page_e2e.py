"""End to end: the web page in a real headless Chromium (Debian's), against a live server.

Needs ``pip install playwright`` (dev extra) and ``apt-get install -y chromium``; Playwright's
own browser download is not used.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian chromium not installed (apt-get install -y chromium)"
)
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serving(settings) -> Iterator[tuple[str, object]]:
    """The real app under uvicorn in a thread, on ``settings.port`` of the loopback."""
    import uvicorn

    from medlens.serve import create_app

    app = create_app(settings)
    app.received = []  # request bodies as they arrived on the wire

    async def recording(scope, receive, send):
        async def spy():
            message = await receive()
            app.received.append(message.get("body", b""))
            return message

        await app(scope, spy if scope["type"] == "http" else receive, send)

    config = uvicorn.Config(recording, host="127.0.0.1", port=settings.port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(300):
        if server.started and app.state.service.model.ready:
            break
        time.sleep(0.1)
    assert app.state.service.model.ready
    try:
        yield f"http://127.0.0.1:{settings.port}", app
    finally:
        server.should_exit = True
        thread.join(30)


@pytest.fixture
def live(make_settings) -> Iterator[tuple[str, object]]:
    """The real app, serving the classifier."""
    with serving(make_settings(port=free_port())) as served:
        yield served


@pytest.fixture
def live_seg(make_settings, seg_run_2d: Path) -> Iterator[tuple[str, object]]:
    """The real app, serving the 2D segmentation run."""
    with serving(make_settings(port=free_port(), run_dir=seg_run_2d)) as served:
        yield served


@contextmanager
def browser_page() -> Iterator[object]:
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page()
        page.problems = []  # console errors (CSP violations included) and page errors
        page.on("console", lambda m: m.type == "error" and page.problems.append(m.text))
        page.on("pageerror", lambda e: page.problems.append(str(e)))
        yield page
        browser.close()


@pytest.fixture
def page(live) -> Iterator[object]:
    with browser_page() as page:
        yield page


@pytest.fixture
def seg_page(live_seg) -> Iterator[object]:
    with browser_page() as page:
        yield page


def expected_label(run_dir: Path, path: Path) -> str:
    from medlens import read_image
    from medlens.inference import Predictor

    return Predictor.from_run(run_dir).predict([read_image(path)])[0].label


def upload(page, path: Path) -> None:
    """Choose a file with the keyboard, as a user without a mouse would."""
    page.locator("#status").evaluate("node => node.textContent = ''")
    with page.expect_file_chooser() as chooser:
        page.focus("#drop")
        page.keyboard.press("Enter")
    chooser.value.set_files(str(path))
    sync_api.expect(page.locator("#status")).to_have_text("Done.", timeout=30_000)


def test_upload_xray_and_dicom(page, live, run_dir: Path, xray_jpeg: Path, ct_dicom: Path):
    base, app = live
    page.goto(base)
    version = app.state.service.model.version
    sync_api.expect(page.locator("#model-info")).to_contain_text(f"version {version}")
    sync_api.expect(page.locator("#intended-use")).to_contain_text("Intended use")

    upload(page, xray_jpeg)
    assert page.text_content("#label") == expected_label(run_dir, xray_jpeg)
    assert page.locator("#bars li").count() == 2
    assert "(predicted)" in page.text_content("#bars li.predicted")
    heatmap, preview = page.locator("#heatmap"), page.locator("#preview")
    sync_api.expect(heatmap).to_be_visible()
    assert heatmap.get_attribute("src").startswith("data:image/png;base64,")
    sizes = page.evaluate(
        "[document.querySelector('#preview').naturalWidth,"
        " document.querySelector('#heatmap').naturalWidth]"
    )
    assert sizes == [224, 224]
    page.locator("#opacity").fill("20")
    assert heatmap.evaluate("node => node.style.opacity") == "0.2"
    page.locator("#show-heatmap").uncheck()
    sync_api.expect(heatmap).to_be_hidden()
    page.locator("#show-heatmap").check()
    sync_api.expect(heatmap).to_be_visible()

    upload(page, ct_dicom)
    assert page.text_content("#label") == expected_label(run_dir, ct_dicom)
    auto_src = preview.get_attribute("src")
    page.select_option("#window", "lung")
    sync_api.expect(page.locator("#status")).to_have_text("Done.", timeout=30_000)
    sync_api.expect(preview).not_to_have_attribute("src", auto_src)

    history = page.locator("#history li")
    assert history.count() == 2
    assert xray_jpeg.stem not in page.content()  # the file name is not shown in the page
    wire = b"".join(app.received)  # ... nor sent: uploads are named upload.<ext>
    assert b'filename="upload.jpeg"' in wire and xray_jpeg.stem.encode() not in wire
    assert page.problems == []
    rows = app.state.service.audit.read()
    assert [r.route for r in rows] == ["/v1/predict", "/v1/predict", "/v1/preview"]


def test_docs_render_offline(page, live) -> None:
    """Swagger UI draws every route with no request leaving the service (CSP allows it)."""
    base, _app = live
    elsewhere: list[str] = []

    def only_the_service(route) -> None:
        if route.request.url.startswith(f"{base}/"):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_service)
    page.goto(f"{base}/docs")
    paths = page.locator(".opblock-summary-path")
    sync_api.expect(paths.first).to_be_visible(timeout=30_000)
    shown = set(paths.all_text_contents())
    assert {"/v1/predict", "/v1/predict/batch", "/v1/model", "/metrics"} <= shown
    assert elsewhere == [] and page.problems == []


@pytest.mark.slow
def test_segmentation_page(seg_page, live_seg, make_disk, tmp_path: Path) -> None:
    """Mask over the image with an opacity control, a volume table, a NIfTI download."""
    import nibabel as nib
    import numpy as np
    from PIL import Image as PILImage

    page, (base, app) = seg_page, live_seg
    image, _disk = make_disk(np.random.default_rng(11))
    path = tmp_path / "DOE_JOHN_knee.png"
    PILImage.fromarray(image).save(path)
    page.goto(base)
    sync_api.expect(page.locator("#model-info")).to_contain_text("version")
    sync_api.expect(page.locator("#segmentation")).to_be_attached()
    upload(page, path)
    assert page.text_content("#label") == "disk"
    assert page.text_content("#label-title") == "Classes found"
    sync_api.expect(page.locator("#classification")).to_be_hidden()
    mask = page.locator("#mask")
    sync_api.expect(mask).to_be_visible()
    sync_api.expect(page.locator("#heatmap")).to_be_hidden()
    sizes = page.evaluate(
        "[document.querySelector('#preview').naturalWidth,"
        " document.querySelector('#mask').naturalWidth]"
    )
    assert sizes == [48, 48]
    rows = page.locator("#volumes tr")
    assert rows.count() == 1 and "disk" in rows.first.text_content()
    assert "mm²" in page.text_content("#volume-unit")
    page.locator("#opacity").fill("30")
    assert mask.evaluate("node => node.style.opacity") == "0.3"
    page.locator("#show-heatmap").uncheck()
    sync_api.expect(mask).to_be_hidden()
    page.locator("#show-heatmap").check()
    assert page.locator("#download-seg").is_disabled()  # a PNG: no DICOM SEG
    page.screenshot(path=str(tmp_path / "segmentation-page.png"), full_page=True)

    with page.expect_download() as info:
        page.click("#download-nifti")
    assert info.value.suggested_filename == "segmentation.nii.gz"
    info.value.save_as(tmp_path / "labels.nii.gz")
    assert nib.load(tmp_path / "labels.nii.gz").shape[:2] == (48, 48)
    assert "DOE" not in page.content() and b"DOE" not in b"".join(app.received)
    assert page.problems == []
    routes = [r.route for r in app.state.service.audit.read()]
    assert routes == ["/v1/predict", "/v1/predict"]


@pytest.mark.slow
def test_similar_cases_panel(make_settings, run_dir: Path, tmp_path: Path, xray_jpeg: Path):
    """With an index, the page shows the nearest training cases: thumbnails and labels only."""
    import shutil

    from medlens.data import load_manifest
    from medlens.similar import SimilarIndex

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    load_manifest(run_dir / "manifest.csv").write(run / "manifest.csv")
    SimilarIndex.build(run)
    with serving(make_settings(port=free_port(), run_dir=run)) as (base, _app):
        with browser_page() as page:
            page.goto(base)
            sync_api.expect(page.locator("#model-info")).to_contain_text("version")
            upload(page, xray_jpeg)
            panel = page.locator("#similar")
            sync_api.expect(panel).to_be_visible(timeout=30_000)
            items = page.locator("#similar-cases li")
            sync_api.expect(items).to_have_count(5)
            assert items.first.locator("img").get_attribute("src").startswith("data:image/png")
            assert items.first.text_content().split(" · ")[0] in ("NORMAL", "PNEUMONIA")
            assert "p0_NORMAL" not in page.content()  # training file names never shown
            assert page.problems == []
