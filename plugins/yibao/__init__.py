"""National medical-insurance platform (国家医疗保障信息平台, "yibao") plugin.

Modules: `envelope` (common request envelope), `msgid` (message ids), `response` (parsing the
common response envelope), `signing` (gateway schemes), `transactions` (the catalogue),
`session` (sign-in), `centre` (one signed, recorded call), `adapter` (the engine adapter),
`rules.yaml` (故障责任清单), `simulator` (a centre to test against), and `api` — the
public API other plugins (drug_trace) import.
"""
