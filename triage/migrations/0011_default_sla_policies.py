from django.db import migrations

# (severity, first response minutes, resolution minutes, on support hours?)
POLICIES = [
    ("critical", 60, 8 * 60, False),  # around the clock
    ("high", 4 * 60, 5 * 8 * 60, True),  # 4 working hours; 5 working days
    ("medium", 8 * 60, 10 * 8 * 60, True),  # 1 working day; 10 working days
    ("low", 3 * 8 * 60, 20 * 8 * 60, True),  # 3 working days; 20 working days
]


def create(apps, schema_editor):
    WorkingCalendar = apps.get_model("triage", "WorkingCalendar")
    SlaPolicy = apps.get_model("triage", "SlaPolicy")
    hours, _ = WorkingCalendar.objects.get_or_create(
        name="Support hours", defaults={"time_zone": "UTC", "work_start": "09:00", "work_end": "17:00"}
    )
    for severity, response, resolution, business in POLICIES:
        SlaPolicy.objects.get_or_create(
            severity=severity,
            defaults={
                "first_response_minutes": response,
                "resolution_minutes": resolution,
                "calendar": hours if business else None,
            },
        )


def remove(apps, schema_editor):
    apps.get_model("triage", "SlaPolicy").objects.all().delete()
    apps.get_model("triage", "WorkingCalendar").objects.filter(name="Support hours").delete()


class Migration(migrations.Migration):
    dependencies = [("triage", "0010_sla")]
    operations = [migrations.RunPython(create, remove)]
