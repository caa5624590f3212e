"""The model's validation: docking to Bass, stylised facts and targets, calibration, sensitivity."""
