"""The browser harness itself: live observation while a cell runs, and exact comm-message counting.

The widget tests rest on these two measurements, so they are checked against a minimal inline
anywidget whose traffic is known exactly.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

PROBE_CELL = '''
import time
import anywidget
import traitlets

class Probe(anywidget.AnyWidget):
    _esm = """
    export default {
      render({ model, el }) {
        const box = document.createElement("div");
        box.className = "probe-box";
        box.dataset.count = "0";
        el.appendChild(box);
        const show = () => { box.textContent = model.get("label") + ":" + box.dataset.count; };
        model.on("msg:custom", (content) => {
          box.dataset.count = String(Number(box.dataset.count) + 1);
          box.dataset.last = String(content.i);
          show();
        });
        model.on("change:label", show);
        show();
      },
    };
    """
    label = traitlets.Unicode("probe").tag(sync=True)

probe = Probe()
probe
'''

SEND_SLOWLY_CELL = """
for i in range(30):
    probe.send({"i": i})
    time.sleep(0.1)
"""

SEND_BURST_CELL = """
for i in range(300):
    probe.send({"i": i})
probe.label = "done"
"""


def test_page_sees_live_updates_while_the_cell_runs_and_counts_every_comm_message(lab_page):
    lab_page.new_notebook("harness.ipynb", [PROBE_CELL, SEND_SLOWLY_CELL, SEND_BURST_CELL])
    lab_page.run_cell(0)
    box = lab_page.page.locator(".probe-box")
    box.wait_for()
    assert box.text_content() == "probe:0"

    mark = lab_page.comm_mark()
    lab_page.start_cell(1)
    seen_while_running: list[int] = []
    while lab_page.cell_running():
        if lab_page.kernel_status() == "busy":
            seen_while_running.append(int(box.get_attribute("data-count") or 0))
        lab_page.page.wait_for_timeout(250)
    lab_page.wait_cell(1)
    assert int(box.get_attribute("data-count") or 0) == 30
    partial = [count for count in seen_while_running if 0 < count < 30]
    assert len(set(partial)) >= 2, f"no growing partial state observed: {seen_while_running}"

    custom = [m for m in lab_page.comm_messages()[mark:] if m["method"] == "custom"]
    assert len(custom) == 30

    mark = lab_page.comm_mark()
    lab_page.run_cell(2)
    lab_page.page.wait_for_function("() => document.querySelector('.probe-box').textContent === 'done:330'")
    after = lab_page.comm_messages()[mark:]
    assert sum(1 for m in after if m["method"] == "custom") == 300
    assert sum(1 for m in after if m["method"] == "update") == 1
    assert len({m["comm_id"] for m in after}) == 1
