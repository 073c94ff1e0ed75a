from __future__ import annotations

from django.db import models


class RDPoint(models.Model):
    """One point of a session's rate-distortion curve; a later sweep at the same
    level replaces it (refinement)."""

    session = models.ForeignKey(
        "compute_sessions.Session", on_delete=models.CASCADE, related_name="rd_points"
    )
    run = models.ForeignKey("runs.Run", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    level = models.PositiveIntegerField()
    rate = models.FloatField()
    distortion = models.FloatField()
    created_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["session", "level"]
        constraints = [models.UniqueConstraint(fields=["session", "level"], name="rd_point_unique_level")]

    def __str__(self) -> str:
        return f"level {self.level}: R={self.rate:.4g} D={self.distortion:.4g}"


class RDKnee(models.Model):
    """The knee of a session's current curve, recomputed by the worker on every sweep."""

    session = models.OneToOneField(
        "compute_sessions.Session", on_delete=models.CASCADE, related_name="rd_knee"
    )
    level = models.PositiveIntegerField()
    rate = models.FloatField()
    distortion = models.FloatField()
    points = models.PositiveIntegerField(help_text="Points on the curve when the knee was found.")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"knee at level {self.level}"
