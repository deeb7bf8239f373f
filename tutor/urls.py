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
    path("research/", views.research, name="research"),
    path("api/", include("tutor.api.urls")),
    path("admin/", admin.site.urls),
]
