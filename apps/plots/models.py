"""Plots are artifacts (apps.artifacts) that the platform draws; a Plot row says which
picture of which data an artifact is, and as of when, so that a newer sweep or run can be
told from what the picture shows."""

from __future__ import annotations

from django.db import models


class PlotSubject(models.TextChoices):
    RD_RUN = "rd_run", "RD curve of one sweep"
    RD_SESSION = "rd_session", "RD curves of a session's sweeps"
    DURATIONS = "durations", "Run durations by kind"


class PlotFormat(models.TextChoices):
    SVG = "svg", "SVG"
    PNG = "png", "PNG"


CONTENT_TYPES = {PlotFormat.SVG: "image/svg+xml", PlotFormat.PNG: "image/png"}


def plot_key(subject: str, run_id: object = None) -> str:
    """One picture per key in a session: per sweep for rd_run, one each for the others."""
    return f"{subject}:{run_id}" if subject == PlotSubject.RD_RUN else str(subject)


class Plot(models.Model):
    session = models.ForeignKey("compute_sessions.Session", on_delete=models.CASCADE, related_name="plots")
    run = models.ForeignKey("runs.Run", on_delete=models.CASCADE, null=True, blank=True, related_name="plots")
    subject = models.CharField(max_length=16, choices=PlotSubject.choices)
    key = models.CharField(max_length=80)
    format = models.CharField(max_length=8, choices=PlotFormat.choices)
    # Deleting the picture (through the artifacts API too) forgets it; the next request redraws it.
    artifact = models.OneToOneField("artifacts.Artifact", on_delete=models.CASCADE, related_name="plot")
    # The newest data the picture shows (a curve's or a run's time): older than the data means stale.
    data_as_of = models.DateTimeField()
    rendered_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["session", "key", "format"], name="plot_unique_per_session_key")
        ]

    def __str__(self) -> str:
        return f"{self.key}.{self.format} of session {self.session_id}"
