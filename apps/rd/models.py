from __future__ import annotations

from django.db import models


class RDCurve(models.Model):
    """The rate-distortion curve of one sweep: one run, one graph, its own knee.

    Curves of different graphs are never merged: a knee belongs to the graph whose
    points found it.
    """

    run = models.OneToOneField("runs.Run", on_delete=models.CASCADE, related_name="rd_curve")
    session = models.ForeignKey(
        "compute_sessions.Session", on_delete=models.CASCADE, related_name="rd_curves"
    )
    nodes = models.PositiveIntegerField(help_text="Nodes of the swept graph.")
    knee_level = models.PositiveIntegerField(null=True, blank=True)
    knee_rate = models.FloatField(null=True, blank=True)
    knee_distortion = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["session", "-created_at"], name="rd_curve_session_idx")]

    def __str__(self) -> str:
        return f"RD curve of run {self.run_id}"

    @property
    def knee(self) -> dict[str, float] | None:
        if self.knee_level is None:
            return None
        return {"level": self.knee_level, "rate": self.knee_rate, "distortion": self.knee_distortion}


class RDPoint(models.Model):
    """One point of a sweep's curve."""

    curve = models.ForeignKey(RDCurve, on_delete=models.CASCADE, related_name="points")
    level = models.PositiveIntegerField()
    rate = models.FloatField()
    distortion = models.FloatField()

    class Meta:
        ordering = ["curve", "level"]
        constraints = [models.UniqueConstraint(fields=["curve", "level"], name="rd_point_unique_level")]

    def __str__(self) -> str:
        return f"level {self.level}: R={self.rate:.4g} D={self.distortion:.4g}"
