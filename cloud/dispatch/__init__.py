"""Crowd dispatch: technicians, explainable matching, offers with deadlines, SLA, ratings."""
