"""Engine policy around destination calls: breakers and retries. Plugins never import these."""
