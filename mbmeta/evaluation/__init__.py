"""Measuring trained models: closed-loop episodes on task grids, prediction error, video, reports, transfer."""
