from django.urls import path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.authtoken.views import obtain_auth_token

from tutor.api import views

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("auth/token/", obtain_auth_token, name="api-token"),
    path("courses/", views.CourseList.as_view(), name="api-courses"),
    path("sessions/", views.SessionList.as_view(), name="api-sessions"),
    path("sessions/<int:pk>/", views.SessionDetail.as_view(), name="api-session"),
    path("sessions/<int:pk>/next-item/", views.NextItem.as_view(), name="api-next-item"),
    path("sessions/<int:pk>/end/", views.EndSession.as_view(), name="api-end-session"),
    path("attempts/", views.AttemptList.as_view(), name="api-attempts"),
    path("attempts/<int:pk>/", views.AttemptDetail.as_view(), name="api-attempt"),
    path("hints/", views.HintList.as_view(), name="api-hints"),
    path("scaffolds/", views.ScaffoldCheck.as_view(), name="api-scaffold"),
    path("mastery/", views.Mastery.as_view(), name="api-mastery"),
]
