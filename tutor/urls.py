from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from tutor import views

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("learn/", views.learn, name="learn"),
    path("learn/join/", views.join, name="join"),
    path("learn/course/<int:course_id>/", views.course_page, name="course"),
    path("learn/course/<int:course_id>/practise/", views.start_practice, name="start-practice"),
    path("practice/<int:session_id>/", views.practice_page, name="practice"),
    path("practice/<int:session_id>/problem/", views.practice_fragment, name="practice-fragment"),
    path("teach/", views.teach, name="teach"),
    path("teach/class/<int:classroom_id>/", views.classroom_page, name="classroom"),
    path("teach/class/<int:classroom_id>/scheduling/", views.classroom_scheduling, name="classroom-scheduling"),
    path("teach/course/<int:course_id>/model/", views.skill_model_page, name="skill-model"),
    path("teach/class/new/", views.classroom_create, name="classroom-create"),
    path("teach/class/<int:classroom_id>/roster/", views.classroom_roster, name="classroom-roster"),
    path("teach/course/<int:course_id>/check/", views.course_check, name="course-check"),
    path("teach/items/preview/", views.item_preview, name="item-preview-draft"),
    path("teach/items/<int:item_id>/preview/", views.item_preview, name="item-preview"),
    path("teach/content/", views.content_page, name="content"),
    path("teach/content/job/<int:job_id>/", views.content_job, name="content-job"),
    path("teach/content/job/<int:job_id>/status/", views.content_job_status, name="content-job-status"),
    path("teach/content/job/<int:job_id>/download/", views.content_job_download, name="content-job-download"),
    path("teach/class/<int:classroom_id>/heatmap/", views.classroom_heatmap, name="classroom-heatmap"),
    path("teach/class/<int:classroom_id>/heatmap.csv", views.classroom_heatmap_csv, name="classroom-heatmap-csv"),
    path("teach/class/<int:classroom_id>/live/", views.classroom_live, name="classroom-live"),
    path(
        "teach/class/<int:classroom_id>/learner/<int:learner_id>/", views.learner_drilldown, name="learner-drilldown"
    ),
    path("teach/class/<int:classroom_id>/items/", views.item_analysis, name="item-analysis"),
    path("teach/class/<int:classroom_id>/graph/", views.skill_graph, name="skill-graph"),
    path("research/", views.research, name="research"),
    path("research/jobs/<int:job_id>/", views.research_job, name="research-job"),
    path("research/jobs/<int:job_id>/download/", views.research_download, name="research-download"),
    path("teach/class/<int:classroom_id>/research/", views.classroom_research, name="classroom-research"),
    path("api/", include("tutor.api.urls")),
    path("admin/", admin.site.urls),
]
