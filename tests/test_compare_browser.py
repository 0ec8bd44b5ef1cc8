"""report.html in a real headless Chromium (Playwright): it loads without errors or network,
sorts, filters, hides curves, smooths, switches the x axis, and works when copied alone."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

try:
    from playwright.sync_api import sync_playwright
except ImportError as err:  # pragma: no cover - depends on the environment
    pytest.skip(f"playwright cannot be imported ({err})", allow_module_level=True)

from genlab.compare import compare
from test_compare import fake_run, sweep_job

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).is_file():  # pragma: no cover - depends on the environment
    pytest.skip("no chromium (Debian's /usr/bin/chromium) to drive", allow_module_level=True)

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]  # fmt: skip
WEIRD = ("<b>x</b>", "$\\foo{$_loss")  # metric names: must show as text in Plotly too


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """A sweep: lr 0.001 with seeds 1 and 2 (a group), lr 0.01 and lr 0.1 (one run each)."""
    sweep = tmp_path_factory.mktemp("browser") / "sweep"
    extra = {"val/kid": 0.1, WEIRD[0]: 1.0, WEIRD[1]: 2.0}
    sweep_job(sweep, 0, ["model.optimizer_g.lr=0.001", "seed=1"], [30.0, 20, 10], extra=extra)
    sweep_job(sweep, 1, ["model.optimizer_g.lr=0.001", "seed=2"], [32.0, 21, 12], extra=extra)
    sweep_job(sweep, 2, ["model.optimizer_g.lr=0.01"], [40.0, 35, 31], extra=extra)
    sweep_job(sweep, 3, ["model.optimizer_g.lr=0.1"], [60.0, 50, 45], extra=extra)
    fake_run(sweep / "4", ["model.optimizer_g.lr=0.5"], [70.0], metrics_csv=False)
    return compare([sweep])


@pytest.fixture
def page(browser, report):
    """The report, opened, every chart drawn; ``page.problems`` collects console errors, page
    errors and requests other than the file itself and data: URIs."""
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    page.problems = []
    page.on("console", lambda m: m.type == "error" and page.problems.append(m.text))
    page.on("pageerror", lambda e: page.problems.append(f"page error: {e}"))
    url = report.as_uri()
    page.on(
        "request",
        lambda r: r.url == url or r.url.startswith("data:") or page.problems.append(r.url),
    )
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']", timeout=30_000)
    yield page
    page.close()


def entry_names(page) -> list[str]:
    return page.eval_on_selector_all(
        "#summary tbody", "bs => bs.map(b => b.rows[0].cells[1].title)"
    )


def traces(page, chart: str = "#chart-0") -> list[dict]:
    """The run, group, visibility, x and y of each trace of a chart (as Plotly holds them)."""
    return page.eval_on_selector(
        chart,
        "d => d.data.map(t => ({run: t.meta.run, group: t.meta.group, visible: t.visible ?? true,"
        " x: Array.from(t.x), y: Array.from(t.y), time: Array.from(t.customdata)}))",
    )


def test_page_loads_without_errors_or_network_and_draws_every_chart(page):
    assert page.problems == []
    charts = page.locator(".chart")
    assert charts.count() == 5  # val/fid, val/kid, train/loss_d and the WEIRD ones
    for i in range(charts.count()):
        assert charts.nth(i).locator(".main-svg").count() > 0
    titles = page.eval_on_selector_all(".chart .gtitle", "ts => ts.map(t => t.textContent)")
    assert set(WEIRD) <= set(titles)  # the names as text: no bold tag, no LaTeX
    assert page.locator(".chart .gtitle b").count() == 0
    page.evaluate("Plotly.Fx.hover('chart-0', [{curveNumber: 0, pointNumber: 1}])")
    hover = page.eval_on_selector("#chart-0 .hoverlayer", "e => e.textContent")
    assert hover == "model.optimizer_g.lr=0.001,seed=1step 19: 20"  # name, step, value


def test_clicking_a_column_header_resorts_the_table(page):
    ranked = entry_names(page)
    assert ranked[0] == "model.optimizer_g.lr=0.001"  # the seed group: best mean FID
    page.click("#summary th:nth-child(2)")  # run name
    assert entry_names(page) == sorted(ranked)
    page.click("#summary th:nth-child(2)")
    assert entry_names(page) == sorted(ranked, reverse=True)
    page.click("#summary th:nth-child(1)")  # rank
    assert entry_names(page) == ranked


def test_legend_click_and_the_filter_hide_a_runs_curves(page):
    before = traces(page)
    group = before[-1]["group"]  # lr=0.1: one run, its own legend entry
    assert all(t["visible"] is True for t in before)
    page.locator("#chart-0 .legend .traces").last.click()
    page.wait_for_function(
        "g => document.querySelector('#chart-1').data.some("
        "t => t.meta.group === g && t.visible === 'legendonly')",
        arg=group,
    )
    for chart in ("#chart-0", "#chart-1"):  # hidden in every chart at once
        hidden = [t for t in traces(page, chart) if t["visible"] != True]  # noqa: E712
        assert {t["group"] for t in hidden} == {group}

    page.fill("#filter", "lr=0.01")  # only the lr=0.01 run
    page.wait_for_function("document.querySelector('#chart-0').data[0].visible === false")
    shown = [t for t in traces(page) if t["visible"] is not False]
    assert len(shown) == 1 and shown[0]["run"] == "r2"
    visible_rows = page.locator("#summary tbody:not(.filtered)")
    assert visible_rows.count() == 1
    assert page.locator("#shown").inner_text() == "1 of 5"
    page.fill("#filter", "")
    page.wait_for_function("document.querySelector('#chart-0').data[0].visible === true")

    page.locator("#chart-0 .legend .traces").first.dblclick()  # only the first group shown
    page.wait_for_function("document.querySelector('#chart-1').data[0].visible === true")
    page.wait_for_function(
        "document.querySelector('#chart-1').data.filter(t => t.visible === true).length === 2"
    )
    shown = {t["group"] for t in traces(page, "#chart-1") if t["visible"] is True}
    assert shown == {before[0]["group"]}  # the seed group's two runs


def test_smoothing_changes_the_plotted_values(page):
    loss = '.chart[data-metric="train/loss_d"]'
    raw = traces(page, loss)  # 6 points per run
    page.eval_on_selector(
        "#smoothing", "el => { el.value = '0.9'; el.dispatchEvent(new Event('input')); }"
    )
    page.wait_for_function("document.querySelector('#smoothing-value').textContent === '0.90'")
    page.wait_for_function(
        "([sel, y0]) => document.querySelector(sel).data[0].y[3] !== y0", arg=[loss, raw[0]["y"][3]]
    )
    smooth = traces(page, loss)
    for before, after in zip(raw, smooth):
        assert after["y"][0] == pytest.approx(before["y"][0])  # debiased: starts on the data
        assert after["y"][1:] != pytest.approx(before["y"][1:])
        assert after["y"][-1] > before["y"][-1]  # a falling loss, smoothed, lags above it


def test_x_axis_switches_to_wall_time(page):
    page.select_option("#xaxis", "time")
    page.wait_for_function(
        "document.querySelector('#chart-0').layout.xaxis.title.text === 'wall time (s)'"
    )
    for trace in traces(page):
        assert trace["x"] == trace["time"]


def test_the_report_copied_alone_shows_every_image_and_chart(browser, report, tmp_path):
    copy = tmp_path / "elsewhere" / "copied.html"
    copy.parent.mkdir()
    shutil.copyfile(report, copy)
    page = browser.new_page()
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(copy.as_uri())
    page.wait_for_selector("body[data-ready='1']", timeout=30_000)
    widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.naturalWidth)")
    assert len(widths) == 3 * 3 + 1 and all(w > 0 for w in widths)  # 3 strips of 3, 1 of 1
    drawn = page.eval_on_selector_all(
        ".chart", "cs => cs.map(c => c.querySelector('.main-svg') !== null)"
    )
    assert drawn == [True] * 5
    assert all(url == copy.as_uri() or url.startswith("data:") for url in requests)
    page.close()
