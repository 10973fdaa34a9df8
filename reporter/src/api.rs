//! The `/api/v1` router and its OpenAPI document, assembled from the routes
//! each feature owns. The document is generated from the routes'
//! `#[utoipa::path]` annotations, so it cannot drift from the router.

use axum::Json;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::Shared;

#[derive(OpenApi)]
#[openapi(
    info(title = "vigil reporter", description = "Agents report here; staff read the fleet's posture."),
    modifiers(&SecurityAddon),
    // Routed apart (its own body limit and timeout, see app.rs), documented here.
    paths(crate::exports::routes::upload),
    tags((name = "agents", description = "routes agents call"), (name = "staff", description = "routes for security staff (Bearer token)"),
        (name = "incidents", description = "incident intake (anyone) and triage (staff)"))
)]
pub struct ApiDoc;

struct SecurityAddon;

impl utoipa::Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Every `/api/v1` route with its documentation: each feature brings its own.
pub fn router() -> OpenApiRouter<Shared> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(crate::enrollment::routes())
        .merge(crate::ingest::routes())
        .merge(crate::policies::routes())
        .merge(crate::fleet::routes())
        .merge(crate::users::routes())
        .routes(routes!(openapi_json))
        .merge(crate::intake::routes())
        .merge(crate::notify::routes())
        .merge(crate::web::session::routes())
        .merge(crate::closures::routes::routes())
        .merge(crate::exports::routes())
        .merge(crate::waivers::routes())
        .merge(crate::baselines::routes())
        .merge(crate::audit_routes::routes())
        .merge(crate::advisories::routes())
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "agents", responses((status = 200, body = serde_json::Value, description = "the OpenAPI 3.1 document of every /api route")))]
async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    static DOC: std::sync::OnceLock<utoipa::openapi::OpenApi> = std::sync::OnceLock::new();
    Json(DOC.get_or_init(|| router().split_for_parts().1).clone())
}
