"""drug_trace: drug traceability codes (药品追溯码) uploaded through the insurance platform
(3501/3502/3505/3506) and expanded through the 码上放心 relation query."""
