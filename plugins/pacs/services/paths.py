"""The services' paths under the engine's `/api/v1`, shared by the routes and the OpenAPI document."""

API_PREFIX = "/api/v1"

OPENAPI = "/pacs/openapi.json"
REGISTRATIONS = "/pacs/registrations"
REGISTRATION = "/pacs/registrations/{accession_number}"
APPOINTMENTS = "/pacs/appointments"
APPOINTMENT = "/pacs/appointments/{accession_number}"
RESULT = "/pacs/results/{accession_number}"
WORKLOAD = "/pacs/workload"
