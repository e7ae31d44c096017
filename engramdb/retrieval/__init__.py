"""Hybrid recall: dense and lexical candidates, fused, weighted and thresholded."""
