"""The OpenAPI document and RFC 7807 problems: valid, complete, and what the app really answers."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from gateway_testkit import (
    PROBLEM,
    Gateway,
    assert_problem,
    gateway_settings,
    migrate,
)
from openapi_spec_validator import validate

from gateway.main import create_app

PUBLIC = {"/healthz", "/readyz"}


@pytest.fixture
def document(gateway: Gateway) -> dict:
    response = gateway.client.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def test_openapi_document_is_valid(document: dict) -> None:
    validate(document)
    assert document["components"]["securitySchemes"]["ApiKey"] == {
        "type": "http", "scheme": "bearer", "description": "An API key: `Authorization: Bearer <key>`.",
    }


def test_reference_paths_are_all_there(document: dict) -> None:
    operations = {(path, method.upper()) for path, item in document["paths"].items() for method in item}
    reference = {
        ("/api/patients", "GET"), ("/api/patients/{patient_id}", "GET"), ("/api/patients", "POST"),
        ("/api/patients/{patient_id}", "PUT"), ("/api/patients/{patient_id}", "DELETE"),
        ("/api/scans", "GET"), ("/api/scans", "POST"), ("/api/scans/{scan_id}", "GET"),
        ("/api/scans/{scan_id}/file", "GET"), ("/api/scans/{scan_id}", "PUT"),
        ("/api/scans/{scan_id}/analyze", "POST"), ("/api/scans/{scan_id}/report", "GET"),
        ("/api/scans/{scan_id}", "DELETE"), ("/inference/predict", "POST"),
    }
    assert reference <= operations


def test_every_operation_declares_its_responses(document: dict) -> None:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            where = f"{method.upper()} {path}"
            assert any(code.startswith("2") for code in responses), where
            for code, response in responses.items():
                if code.startswith(("4", "5")):
                    assert list(response["content"]) == [PROBLEM], where
                    assert response["content"][PROBLEM]["schema"] == {"$ref": "#/components/schemas/Problem"}
            if path in PUBLIC:
                assert "security" not in operation, where
                continue
            assert operation["security"] == [{"ApiKey": []}], where
            assert "401" in responses, where
            if path != "/api/whoami":
                assert "403" in responses, where
            if "{" in path:
                assert "404" in responses, where
            # What FastAPI validates (query parameters, a JSON body) can fail with 422.
            json_body = "application/json" in operation.get("requestBody", {}).get("content", {})
            if json_body or any(p["in"] == "query" for p in operation.get("parameters", [])):
                assert "422" in responses, where


def test_upload_and_report_are_documented(document: dict) -> None:
    upload = document["paths"]["/api/scans"]["post"]
    schema = upload["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert schema["required"] == ["files"] and schema["properties"]["files"]["type"] == "array"
    assert {"413", "415", "422"} <= set(upload["responses"])
    report = document["paths"]["/api/scans/{scan_id}/report"]["get"]["responses"]
    assert report["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ReportV1"}
    report_schema = document["components"]["schemas"]["ReportV1"]
    assert {"status", "verdict", "reason", "findings"} <= set(report_schema["properties"])
    assert "202" in report


def test_routing_errors_are_problems(gateway: Gateway) -> None:
    assert_problem(gateway.client.get("/no/such/route"), 404)
    assert_problem(gateway.client.patch("/api/scans", headers=gateway.admin), 405)
    body = assert_problem(gateway.client.get("/api/scans?limit=0", headers=gateway.admin), 422, "invalid_request")
    assert body["errors"][0]["loc"] == ["query", "limit"]


def test_unhandled_errors_leak_nothing(tmp_path: Path) -> None:
    settings = gateway_settings(tmp_path)
    migrate(settings.resolved_database_url)
    app = create_app(settings)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("database password is hunter2")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")
    body = assert_problem(response, 500, "internal_error")
    assert "hunter2" not in response.text and "RuntimeError" not in response.text
    assert body["instance"] == "/boom"
