"""Names are listed once, in the catalog tables; settings, models, methods and help texts agree."""

from __future__ import annotations

import typing

from dckd_cli.catalog.architectures import ARCH_CHOICES, ARCHITECTURES, SIZES
from dckd_cli.catalog.methods import METHODS
from dckd_cli.catalog.tasks import SCALES, TASKS
from dckd_cli.cli import options
from dckd_cli.methods.build import BUILDERS as NEED_BUILDERS
from dckd_cli.methods.terms import TERMS
from dckd_cli.models.zoo import BUILDERS, build_model
from dckd_cli.report.progress import TERM_ORDER
from dckd_cli.settings import method as method_settings
from dckd_cli.settings import schema


def _literal(field_owner: type, name: str) -> tuple:
    return typing.get_args(field_owner.model_fields[name].annotation)


def test_settings_literals_are_the_tables():
    assert _literal(schema.RunSettings, "task") == tuple(TASKS)
    assert _literal(schema.RunSettings, "scale") == SCALES
    spec = schema.ModelSpec
    assert all(spec(arch=name.upper()).arch == name for name in ARCH_CHOICES)  # a table name in any case
    assert _literal(schema.ModelSpec, "size") == SIZES
    assert _literal(method_settings.MethodSettings, "name") == tuple(METHODS)


def test_help_texts_name_every_entry_of_their_table():
    def help_of(option_type: object) -> str:
        return next(m.help for m in typing.get_args(option_type)[1:] if hasattr(m, "help"))

    assert all(name in help_of(options.MethodOpt) for name in METHODS)
    assert all(name in help_of(options.TaskOpt) for name in TASKS)
    assert all(name in help_of(options.TeacherOpt) for name in ARCHITECTURES if not ARCHITECTURES[name].reference)
    assert all(name in help_of(options.SizeOpt) for name in SIZES)
    assert all(str(s) in help_of(options.ScaleOpt) for s in TASKS["sr"].scales)


def test_every_method_declares_known_terms_and_every_term_is_used():
    used = {t for spec in METHODS.values() for t in spec.terms}
    assert used == set(TERMS)
    assert tuple(TERMS) == tuple(method_settings.LossWeights.model_fields)  # one term, one weight, one order
    assert all(need in NEED_BUILDERS for term in TERMS.values() for need in term.needs)
    assert TERM_ORDER == ("loss", *TERMS)
    for name, spec in METHODS.items():
        assert spec.terms[0] == "rec", name
        assert ("dcl" in spec.terms) == (spec.negatives is not None), name


def test_every_architecture_builds_at_every_size_for_its_tasks():
    assert set(BUILDERS) <= set(ARCHITECTURES)
    for name, arch in ARCHITECTURES.items():
        assert name in BUILDERS or arch.spandrel, name  # the table's own builder, or its spandrel family
        scale = max(TASKS[arch.tasks[0]].scales)
        for task, _ in arch.official:
            assert task in arch.tasks, name
        for size in arch.sizes:
            model = build_model(name, size, scale)
            for path in arch.feature_taps:
                model.get_submodule(path)  # a default FAKD tap exists in the real model
        assert set(arch.params) <= {"teacher", "student"}


def _deployed_parameters(model) -> int:  # noqa: ANN001
    """Parameters at inference: SPAN's training-only branches (re-parameterised into eval_conv) left out."""
    return sum(p.numel() for n, p in model.named_parameters() if not (".sk." in n or ".conv." in n and "eval" not in n))


def test_the_named_efficient_students_have_their_published_parameter_counts():
    """SPAN 426K (x4, 48 channels, at inference), SAFMN 240K, OmniSR 792K (spandrel's build counts
    805K, 1.7 % more), DCTLSA 885,328 (the official x4 release's tensors, counted exactly below)."""
    published = {"span": 426_000, "safmn": 240_000, "omnisr": 792_000, "dctlsa": 885_328}
    for name, count in published.items():
        model = build_model(name, "student", 4)
        assert abs(_deployed_parameters(model) - count) / count < 0.02, (name, _deployed_parameters(model))
        assert ARCHITECTURES[name].params["student"] == f"{round(count / 1000)}K"


def test_the_dctlsa_student_size_is_the_official_release(shared_weights):  # noqa: ANN001
    import torch

    release = torch.load(shared_weights / "DCTLSA_x4.pt", map_location="cpu", weights_only=True)
    model = build_model("dctlsa", "student", 4)
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == {k: tuple(v.shape) for k, v in release.items()}
