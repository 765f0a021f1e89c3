"""Lab analysers: HL7 v2 results and ASTM E1381/E1394, normalised into one result model."""
