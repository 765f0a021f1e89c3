"""PACS/RIS: exam orders from HIS to a PACS over HL7 ORM^O01 (MLLP), SOAP or REST, and the
report model PACS answers map to. The simulator (`python -m plugins.pacs.simulator`)
speaks SOAP (with a WSDL) and REST."""
