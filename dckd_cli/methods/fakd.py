"""``fakd``: L_rec + L_kd + spatial-affinity feature distillation on tapped layers."""

from __future__ import annotations

import torch
from torch import nn

from dckd_cli.losses.fakd import fakd_loss
from dckd_cli.methods.feature_taps import DEFAULT_TAPS, FeatureTaps, TapError
from dckd_cli.methods.logits import LogitsMethod
from dckd_cli.settings.schema import RunSettings


class FakdMethod(LogitsMethod):
    needs_teacher = True
    reads_teacher_features = True

    def __init__(self, settings: RunSettings, student: nn.Module, teacher: nn.Module | None):
        super().__init__(settings, student, teacher)
        assert teacher is not None
        cfg = settings.method.fakd
        s_paths = cfg.student_layers or DEFAULT_TAPS.get(settings.student.arch, [])
        t_paths = cfg.teacher_layers or DEFAULT_TAPS.get(settings.teacher.arch, [])
        if not s_paths or len(s_paths) != len(t_paths):
            raise TapError(
                "FAKD needs as many teacher as student layers: set method.fakd.student_layers "
                "and method.fakd.teacher_layers (module paths)"
            )
        self.student_taps = FeatureTaps(student, s_paths, "student")
        self.teacher_taps = FeatureTaps(teacher, t_paths, "teacher")

    def loss_terms(self, lq: torch.Tensor, gt: torch.Tensor, student_out: torch.Tensor) -> dict[str, torch.Tensor]:
        terms = super().loss_terms(lq, gt, student_out)  # runs the teacher: its taps fill here
        terms["fakd"] = self.weights.fakd * fakd_loss(self.student_taps.collect(), self.teacher_taps.collect())
        return terms
