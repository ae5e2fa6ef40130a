"""What is trusted, and the decision: certificates, trust anchors, chain judging, the pure policy."""
