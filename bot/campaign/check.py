"""Checks a campaign needs more than its own file for: the dialog scripts, the other campaigns."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bot.campaign.loader import CampaignSet, LoadedCampaign, load_campaigns
from bot.dialog.library import Library, load_library
from bot.dialog.problem import Problem

HOLDOUT_WARN_ABOVE = 0.5
"""A control group larger than this leaves most of the audience uncontacted: a warning."""


def library_locales(library: Library) -> list[str]:
    """Every locale the dialog library has a script or a locale pack for."""
    return sorted({locale for _, locale in library.scripts} | set(library.packs))


def check_campaign(loaded: LoadedCampaign, library: Library) -> list[Problem]:
    """Problems of one campaign: its script in every locale, its window, purpose and channels."""
    campaign = loaded.campaign
    lines = loaded.lines
    file = loaded.file
    problems: list[Problem] = []
    locales = library_locales(library)
    if not locales:
        problems.append(
            Problem(file, lines.value(("script",)), "no dialog scripts to check `script` against")
        )
    for locale in locales:
        if (campaign.script, locale) not in library.scripts:
            problems.append(
                Problem(
                    file,
                    lines.value(("script",)),
                    f"script '{campaign.script}' has no valid {locale} version "
                    f"({campaign.script}.{locale}.yaml is missing or fails `dialogs check`)",
                )
            )
    if "voice" in campaign.channels and campaign.purpose == "marketing":
        index = campaign.channels.index("voice")
        problems.append(
            Problem(
                file,
                lines.value(("channels", index)),
                "voice for a marketing campaign: 38-FZ art. 18 bans advertising by automatic "
                "dialling, so the guard blocks robot calls to +7 numbers and reroutes them "
                "(Telegram with consent, or a human callback)",
                severity="warning",
            )
        )
    window = campaign.window
    if window.start >= window.end:
        problems.append(
            Problem(
                file,
                lines.key(("window", "to")),
                f"window: 'from' {window.start:%H:%M} must be before 'to' {window.end:%H:%M}",
            )
        )
    if campaign.frequency_cap.exempt and campaign.purpose == "marketing":
        problems.append(
            Problem(
                file,
                lines.key(("frequency_cap", "exempt")),
                "frequency_cap.exempt: a marketing campaign cannot be exempt from the cap",
            )
        )
    economics = campaign.economics
    if economics is not None and campaign.audience.kind != "lapsed":
        problems.append(
            Problem(
                file,
                lines.key(("economics",)),
                f"economics: only a lapsed (win-back) audience can be judged worth winning back, "
                f"this one is {campaign.audience.kind}; remove `economics`",
            )
        )
    elif economics is not None and economics.cost_to_win_back == 0:
        problems.append(
            Problem(
                file,
                lines.key(("economics", "cost_to_win_back")),
                "economics.cost_to_win_back 0: every customer who ever paid is worth it, "
                "nobody is skipped",
                severity="warning",
            )
        )
    if campaign.holdout_share > HOLDOUT_WARN_ABOVE:
        problems.append(
            Problem(
                file,
                lines.key(("holdout_share",)),
                f"holdout_share {campaign.holdout_share:g}: more than half of the audience "
                "would never be contacted",
                severity="warning",
            )
        )
    stem = Path(file).name.removesuffix(".yaml")
    if stem != campaign.id:
        problems.append(
            Problem(
                file,
                lines.key(("id",)),
                f"the file is not named after the campaign id: expected {campaign.id}.yaml",
                severity="warning",
            )
        )
    return problems


def check_campaigns(loaded: CampaignSet, library: Library) -> list[Problem]:
    """Every campaign's own checks, then the ones across campaigns (ids used twice)."""
    problems: list[Problem] = []
    first: dict[str, LoadedCampaign] = {}
    for one in loaded.campaigns:
        problems.extend(check_campaign(one, library))
        earlier = first.get(one.campaign.id)
        if earlier is not None:
            problems.append(
                Problem(
                    one.file,
                    one.lines.value(("id",)),
                    f"duplicate campaign id '{one.campaign.id}' (first in "
                    f"{earlier.file}:{earlier.lines.value(('id',))})",
                )
            )
        else:
            first[one.campaign.id] = one
    return problems


def check_paths(paths: Sequence[Path], dialogs: Path) -> CampaignSet:
    """Load the campaigns under `paths` and check them against the scripts in `dialogs`."""
    loaded = load_campaigns(paths)
    library = load_library(dialogs)
    loaded.problems.extend(check_campaigns(loaded, library))
    return loaded
