"""An automated accessibility check for the browser tests: axe-core (tests/fixtures/axe, MPL-2.0) run in the page.

`serious_violations(page)` injects axe into the page as it stands (through the DevTools protocol, so the pages'
own Content-Security-Policy does not stop it), runs the WCAG 2.x A/AA rules and returns one line per serious or
critical violation ("color-contrast: … at .kefu-footer"), so a failing assertion says what to fix and where.
"""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Page

AXE = Path(__file__).resolve().parent / "fixtures" / "axe" / "axe.min.js"
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

_RUN = """async ([include, tags]) => {
  const result = await axe.run(include ? {include: [include]} : document,
                               {runOnly: {type: "tag", values: tags}, resultTypes: ["violations"]});
  return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                      targets: v.nodes.slice(0, 3).map(n => n.target.join(" "))}));
}"""


_SETTLE = """() => Promise.all(document.getAnimations()
    .filter(a => a.effect && a.effect.getComputedTiming().endTime !== Infinity)
    .map(a => a.finished.catch(() => null)))"""


async def serious_violations(page: Page, include: str | None = None) -> list[str]:
    """Serious and critical WCAG A/AA violations in the page (or inside the `include` selector)."""
    if not await page.evaluate("typeof window.axe === 'object'"):
        await page.evaluate(AXE.read_text(encoding="utf-8"))
    await page.evaluate(_SETTLE)  # a panel still fading in would be measured at part opacity
    violations = await page.evaluate(_RUN, [include, WCAG_AA])
    return [f"{v['id']} ({v['impact']}): {v['help']} at {', '.join(v['targets'])}"
            for v in violations if v["impact"] in ("serious", "critical")]
