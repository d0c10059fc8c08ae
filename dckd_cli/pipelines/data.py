"""`dckd data prepare`: the training sets of settings prepared now, as a run's first use would."""

from __future__ import annotations

from dckd_cli.data.pairs import training_loaders
from dckd_cli.data.prepared import PreparedInfo, PreparedPair, prepared_sets
from dckd_cli.settings.schema import RunSettings


def prepare_training_sets(settings: RunSettings) -> list[PreparedInfo]:
    """Prepare every training set of ``settings`` (checking each image); what the cache then holds for them."""
    d = settings.data
    loaders = training_loaders(d.train, settings.task, settings.scale, d.root, d.skip_bad_images)
    files = {loader.data.parent for loader in loaders if isinstance(loader, PreparedPair)}
    return [info for info in prepared_sets() if info.folder in files]
