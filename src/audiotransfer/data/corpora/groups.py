"""Grouped splits for `folder` and `csv`: clips cut from one recording (or spoken by one speaker) stay in one
split, so a test score never measures memory of a recording seen in training.

A clip's group comes from the `group` option (a regular expression whose first capture group, searched in the
clip's path relative to the root, names the group), a `group` column (csv), or, for files named in the ESC-50
pattern `{fold}-{source}-{take}[-{target}].wav`, `{fold}-{source}`; such a layout keeps its official folds
(test fold 5, dev fold 4, as the `esc50` corpus). Groups are split by scikit-learn's StratifiedGroupKFold
(seeded): stratified by label as far as the groups allow.
"""

from __future__ import annotations

import logging
import re
import warnings

import numpy as np
import pandas as pd

from audiotransfer.data.corpora._common import stratified_splits
from audiotransfer.errors import UserError, cut

log = logging.getLogger(__name__)

ESC_NAME = re.compile(r"(?:^|/)((\d+)-[^-/]+)-[A-Za-z]{1,2}(?:-\d+)?\.[^./]+$")
TAKE_SUFFIX = re.compile(r"^(.+?)[-_ .]+[^-_ ./]{1,3}$")  # `{source}_{take}`: a short last token
ESC_FOLDS = {"1", "2", "3", "4", "5"}
FOLDS_PER_SPLIT = 10  # groups are dealt into this many stratified folds (fewer when there are fewer groups)


def groups_from_pattern(paths: pd.Series, pattern: str, where: str) -> pd.Series:
    """Each path's group: the first capture group of `pattern` searched in the path; a path it does not
    match is a UserError naming it."""
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise UserError(
            f"{where}: option group={cut(pattern)} is not a regular expression ({exc})",
            fix="write e.g. -o 'group=^(\\d+-\\d+)-' (the first (...) names the group)",
        ) from None
    if regex.groups < 1:
        raise UserError(
            f"{where}: option group={cut(pattern)} has no capture group",
            fix="put the part of the path that names the group in parentheses, e.g. '_([a-z]+)_'",
        )
    found = paths.map(lambda p: (m := regex.search(p)) and m.group(1))
    missing = paths[found.isna() | (found == "")]
    if len(missing):
        raise UserError(
            f"{where}: option group={cut(pattern)} does not match {len(missing)} of {len(paths)} "
            f"files, e.g. {cut(missing.iloc[0], 80)}",
            fix="write a pattern whose first group matches every path (relative to the root)",
        )
    return found.astype(str)


def split_clips(clips: pd.DataFrame, group: str | None, dev: float, test: float, seed: int, where: str) -> pd.DataFrame:
    """`clips` (`path`, `label`, maybe `group`) with `group` and `split` set (see the module doc); when no
    group is known and names look like several takes per source, one warning naming the option."""
    clips = clips.copy()
    esc = clips["path"].str.extract(ESC_NAME)
    if group is not None:
        clips["group"] = groups_from_pattern(clips["path"], group, where)
    elif "group" not in clips and esc[0].notna().all():
        clips["group"] = esc[0]
        if set(esc[1]) <= ESC_FOLDS and len(set(esc[1])) >= 3:
            clips["split"] = esc[1].map({"5": "test", "4": "dev"}).fillna("train")
            return clips
    if "group" in clips:
        clips["split"] = grouped_splits(clips["label"], clips["group"], dev, test, seed)
    else:
        warn_takes(clips["path"], where)
        clips["split"] = stratified_splits(clips["label"], dev, test, seed)
    warn_unscored(clips, {"dev": dev, "test": test}, where)
    return clips


def warn_unscored(clips: pd.DataFrame, fractions: dict[str, float], where: str) -> None:
    """One warning naming the classes that got no clip in a split that was asked for (a class of one clip
    is trained on but never scored)."""
    for split, fraction in fractions.items():
        if fraction <= 0:
            continue
        missing = sorted(set(clips["label"]) - set(clips.loc[clips["split"] == split, "label"]))
        if missing:
            log.warning(
                f"warning: {where}: {len(missing)} class(es) have no {split} clip (too few clips or groups): "
                f"{', '.join(map(cut, missing[:5]))}{', ...' if len(missing) > 5 else ''}; they are never "
                f"scored on {split}"
            )


def grouped_splits(labels: pd.Series, groups: pd.Series, dev: float, test: float, seed: int) -> np.ndarray:
    """'train'/'dev'/'test' per clip, every group in one split: test first, then dev from the rest."""
    if min(dev, test) < 0 or dev + test >= 1:
        raise UserError(
            f"options dev_fraction={dev}, test_fraction={test}",
            fix="use fractions >= 0 that leave some clips for training (sum < 1)",
        )
    labels, groups = labels.reset_index(drop=True), groups.reset_index(drop=True)
    split = np.full(len(labels), "train", dtype=object)
    is_test = _pick_groups(labels, groups, test, seed)
    split[is_test] = "test"
    rest = np.flatnonzero(~is_test)
    if dev > 0:
        split[rest[_pick_groups(labels.iloc[rest], groups.iloc[rest], dev / (1 - test), seed + 1)]] = "dev"
    return split


def _pick_groups(labels: pd.Series, groups: pd.Series, fraction: float, seed: int) -> np.ndarray:
    """Mask of whole groups holding about `fraction` of the clips, stratified by label (seeded)."""
    from sklearn.model_selection import StratifiedGroupKFold

    mask = np.zeros(len(labels), dtype=bool)
    n_groups = groups.nunique()
    if fraction <= 0 or not len(labels):
        return mask
    folds = min(FOLDS_PER_SPLIT, n_groups)
    take = max(1, round(fraction * folds))
    if folds < 2 or take >= folds:
        raise UserError(
            f"{n_groups} group(s) are too few to hold out {fraction:.0%} of the clips by group",
            fix="use a finer group pattern, more recordings, or smaller dev/test fractions",
        )
    splitter = StratifiedGroupKFold(folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "least populated class has only N members"
        for _, held in list(splitter.split(np.zeros(len(labels)), labels.to_numpy(), groups.to_numpy()))[:take]:
            mask[held] = True
    return mask


def warn_takes(paths: pd.Series, where: str) -> None:
    """One warning when at least half the files share a name stem before a short take suffix with another
    file (`0_jackson_0.wav`, `0_jackson_1.wav`): a random split would put takes of one source on both sides."""
    stems = paths.str.replace(r"\.[^./]*$", "", regex=True)
    sources = stems.map(lambda s: (m := TAKE_SUFFIX.match(s)) and m.group(1))
    shared = sources.notna() & sources.duplicated(keep=False)
    folders = paths.str.rpartition("/")[0].nunique()  # `dog/dog_001.wav`: one stem per folder is a naming scheme
    if len(paths) >= 4 and shared.mean() >= 0.5 and sources[shared].nunique() > folders:
        example = sources[shared].iloc[0]
        log.warning(
            f"warning: {where}: {int(shared.sum())} of {len(paths)} file names look like several takes of "
            f"one source (e.g. {cut(example)}); a random split puts takes of one source in training and test"
            f"\n  fix: name each clip's group with the option group=REGEX (its first (...) names the group, "
            f"searched in the path), e.g. -o 'group=_([a-z]+)_' for spoken digits by speaker, or give the "
            f"csv a 'group' column"
        )


def groups_per_split(clips: pd.DataFrame) -> dict[str, int]:
    """Number of distinct groups in each split ({} when the clips carry no group)."""
    if "group" not in clips:
        return {}
    return {str(k): int(v) for k, v in clips.groupby("split")["group"].nunique().sort_index().items()}
